/**
 * Single sign-on against a real OpenID provider (npm oidc-provider, see idp/idp.mjs): each test has
 * its own provider and its own Pulse, pointed at each other (`test.use({ sso: true })`).
 * Provider users: alice (pulse-admins, pulse-users), bob (pulse-users), mallory (contractors).
 * Who may sign in and with which role, and the hidden local form: sso-access.spec.ts.
 */
import { test, expect, gotoHydrated, waitForHydration } from './fixtures';
import {
  ALICE,
  BOB,
  SSO_BUTTON,
  currentLocation,
  expectSsoDashboard,
  providerLoginInput,
  signInAtProvider,
  signInWithSso,
  startSso,
} from './helpers';

test.describe('single sign-on', () => {
  test.use({ sso: true });

  test('signs in at the provider and lands on the page asked for', async ({ page, pulse, idp }) => {
    await page.goto('/?from=sso');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/?from=sso' } });
    await waitForHydration(page);

    // The button carries returnTo to the SSO start route; the local form is offered as well.
    const button = page.getByRole('link', { name: SSO_BUTTON });
    await expect(button).toHaveClass(/\bbutton-sso\b/);
    const href = new URL((await button.getAttribute('href'))!, pulse.baseURL);
    expect(href.pathname).toBe('/api/oidc/login');
    expect(href.searchParams.get('returnTo')).toBe('/?from=sso');
    await expect(page.locator('.divider')).toHaveText('or');
    await expect(page.locator('#password')).toBeVisible();

    await startSso(page, idp.issuer);
    await signInAtProvider(page, pulse.baseURL, 'alice');

    await expect(page).toHaveURL(`${pulse.baseURL}/?from=sso`);
    await waitForHydration(page);
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });
  });

  test('the authorization request uses the code flow with PKCE and state', async ({ page, pulse, idp }) => {
    await gotoHydrated(page, '/login');
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${idp.issuer}/auth?`));
    await startSso(page, idp.issuer);
    const params = Object.fromEntries(new URL((await authorize).url()).searchParams);
    expect(params).toMatchObject({
      response_type: 'code',
      client_id: 'pulse',
      redirect_uri: `${pulse.baseURL}/api/oidc/callback`,
      code_challenge_method: 'S256',
    });
    expect(params.scope.split(' ')).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'groups']));
    expect(params.state).toBeTruthy();
    expect(params.nonce).toBeTruthy();
    expect(params.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('cancelling at the provider shows its refusal on the login page', async ({ page, pulse, idp }) => {
    await gotoHydrated(page, '/login');
    await startSso(page, idp.issuer);
    await page.getByRole('link', { name: '[ Cancel ]' }).click();
    await page.waitForURL((url) => url.origin === new URL(pulse.baseURL).origin);
    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { oidc: 'error', oidc_error: 'idp_error' },
    });
    await waitForHydration(page);
    await expect(page.getByRole('alert')).toHaveText(
      'The identity provider refused the sign-in. The provider said: \u201cEnd-User aborted interaction\u201d',
    );
    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
  });

  test('returnTo cannot send the browser to another site', async ({ page, pulse, idp }) => {
    // Only local paths are kept; anything else becomes "/". (The idp fixture blocks the browser's
    // requests off this machine, so a redirect to evil.example would fail this test as well.)
    const [first, ...others] = ['//evil.example/steal', '/\\evil.example/steal', 'https://evil.example/', '/\t/evil.example'];
    await page.goto(`/api/oidc/login?returnTo=${encodeURIComponent(first)}`);
    expect(new URL(page.url()).origin).toBe(new URL(idp.issuer).origin);
    await signInAtProvider(page, pulse.baseURL, 'alice');
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText('alice');
    // The provider session now answers at once, so the other forms cost one round trip each.
    for (const returnTo of others) {
      await page.goto(`/api/oidc/login?returnTo=${encodeURIComponent(returnTo)}`);
      await expect(page, `returnTo ${JSON.stringify(returnTo)}`).toHaveURL(`${pulse.baseURL}/`);
    }
  });

  test('a callback URL opened in another browser is refused (login CSRF)', async ({ page, pulse, idp, browser }) => {
    // The provider's redirect back to Pulse (code + state), as the browser requested it.
    const callbacks: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname === '/api/oidc/callback') callbacks.push(request.url());
    });
    await gotoHydrated(page, '/login');
    await startSso(page, idp.issuer);
    await signInAtProvider(page, pulse.baseURL, 'alice');
    await expect(page.getByTestId('viewer-username')).toHaveText('alice');
    expect(callbacks).toHaveLength(1);
    expect(new URL(callbacks[0]).searchParams.get('code')).toBeTruthy();

    // A victim's browser sent to that URL (no sign-in of its own pending) is not signed in as alice.
    const other = await browser.newContext({ baseURL: pulse.baseURL });
    try {
      const victim = await other.newPage();
      await victim.goto(callbacks[0]);
      expect(currentLocation(victim)).toMatchObject({
        pathname: '/login',
        params: { oidc: 'error', oidc_error: 'invalid_state' },
      });
      await expect(victim.getByRole('alert')).toHaveText(
        'This sign-in link expired or was started in another browser. Start again with the button below.',
      );
      await victim.goto('/');
      expect(currentLocation(victim).pathname).toBe('/login');
      await expect(victim.getByTestId('viewer-username')).toHaveCount(0);
    } finally {
      await other.close();
    }
  });

  test('a provider that cannot be reached gives a sentence, not an error page', async ({ page, idp }) => {
    await idp.close();
    await gotoHydrated(page, '/login?returnTo=/');
    await page.getByRole('link', { name: SSO_BUTTON }).click();
    await page.waitForURL(/oidc_error=/);
    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { oidc: 'error', oidc_error: 'provider_unavailable' },
    });
    await expect(page.getByRole('alert')).toHaveText(
      "The identity provider could not be reached. Try again in a moment; if it persists, an administrator should check the issuer URL and network.",
    );
    // The local form is still there.
    await expect(page.locator('#password')).toBeVisible();
  });

  test('signing out ends the provider session too', async ({ page, pulse, idp }) => {
    await gotoHydrated(page, '/login');
    await signInWithSso(page, pulse.baseURL, idp.issuer, 'alice');
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await waitForHydration(page);
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });

    // Sign out → the provider's end-session page, asking for confirmation.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((url) => url.origin === new URL(idp.issuer).origin);
    const endSession = currentLocation(page);
    expect(endSession.pathname).toBe('/session/end');
    expect(endSession.params).toMatchObject({
      post_logout_redirect_uri: `${pulse.baseURL}/login?logged_out=1`,
      client_id: 'pulse',
    });
    expect(endSession.params.id_token_hint).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(endSession.params.state).toBeTruthy();

    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL((url) => url.origin === new URL(pulse.baseURL).origin);
    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { logged_out: '1', state: endSession.params.state },
    });
    await waitForHydration(page);
    await expect(page.getByRole('status').filter({ hasText: 'You have been signed out.' })).toBeVisible();

    // Pulse's session is gone…
    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
    await expect(page.getByTestId('viewer-username')).toHaveCount(0);

    // …and so is the provider's: SSO asks for the login form again (a live provider session would
    // send the browser straight back to Pulse, signed in as alice, without it).
    await waitForHydration(page);
    await page.getByRole('link', { name: SSO_BUTTON }).click();
    await expect(providerLoginInput(page)).toBeVisible();
    expect(new URL(page.url()).origin).toBe(new URL(idp.issuer).origin);
    await signInAtProvider(page, pulse.baseURL, 'bob');
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expectSsoDashboard(page, { ...BOB, role: 'admin' });
  });
});

test.describe('back-channel logout', () => {
  test.use({ sso: { backchannelLogoutPath: '/api/oidc/backchannel-logout' } });

  test('signing out at the provider ends the Pulse session', async ({ page, pulse, idp }) => {
    await gotoHydrated(page, '/login');
    await signInWithSso(page, pulse.baseURL, idp.issuer, 'alice');
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText('alice');

    // Sign out at the provider directly (another application's sign-out would do the same); the
    // provider POSTs a logout token to Pulse before it answers.
    await page.goto(`${idp.issuer}/session/end`);
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await expect(page.getByRole('heading', { name: 'Sign-out Success' })).toBeVisible();
    expect(idp.logs()).toContain('back-channel logout sent to pulse for alice');

    await page.goto(`${pulse.baseURL}/`);
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
    await expect(page.getByTestId('viewer-username')).toHaveCount(0);
  });
});

test.describe('single sign-on without JavaScript', () => {
  test.use({ sso: true, javaScriptEnabled: false });

  test('the SSO button is a plain link: sign-in and sign-out work', async ({ page, pulse, idp }) => {
    await page.goto('/?from=nojs');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/?from=nojs' } });
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

    await signInWithSso(page, pulse.baseURL, idp.issuer, 'alice');
    await expect(page).toHaveURL(`${pulse.baseURL}/?from=nojs`);
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await page.waitForURL((url) => url.origin === new URL(pulse.baseURL).origin);
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { logged_out: '1' } });
    await expect(page.getByText('You have been signed out.')).toBeVisible();
    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
  });
});
