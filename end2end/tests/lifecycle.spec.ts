/**
 * Session lifecycle: SSO sessions that renew with the provider (offline_access → a rotating refresh
 * token), a grant revoked at the provider, and ending sessions from the Sessions screen.
 *
 * The provider (idp/idp.mjs) counts the refresh grants it answers and refuses, and can revoke its
 * grants server-side; nothing here waits a fixed time: every wait polls something observable.
 */
import type { Page } from '@playwright/test';
import { test, expect, ADMIN, adminEnv, gotoHydrated, waitForHydration, type PulseServer } from './fixtures';
import type { Idp } from '../idp/idp.mjs';
import { ALICE, currentLocation, expectSsoDashboard, providerLoginInput, signIn, startSso, submitLogin } from './helpers';

/** Asks for offline_access: Pulse then sends prompt=consent and gets a refresh token. */
const OFFLINE_ACCESS = { OIDC_SCOPES: 'openid profile email groups offline_access' };
/**
 * Seconds. oidc-provider accepts any positive integer; 2 s makes Pulse's refresh due 1.6 s after
 * each refresh (a fifth of the lifetime early) while a burst of requests still fits well inside it.
 */
const ACCESS_TOKEN_TTL = 2;
const SESSION_ENDED_AT_IDP = 'Your single sign-on session ended at the identity provider. Sign in again.';

/**
 * From Pulse's login page through the provider as `login`, expecting the consent page that
 * prompt=consent forces, back to the dashboard. Returns the authorization request's parameters.
 */
async function signInWithConsent(page: Page, pulse: PulseServer, idp: Idp, login: string) {
  await gotoHydrated(page, '/login');
  const authorize = page.waitForRequest((r) => r.url().startsWith(`${idp.issuer}/auth?`));
  await startSso(page, idp.issuer);
  const params = Object.fromEntries(new URL((await authorize).url()).searchParams);
  await providerLoginInput(page).fill(login);
  await page.locator('input[name=password]').fill('any password works here');
  await page.getByRole('button', { name: 'Sign-in', exact: true }).click();
  await page.getByRole('button', { name: 'Continue', exact: true }).click();
  await expect(page).toHaveURL(`${pulse.baseURL}/`);
  await waitForHydration(page);
  return params;
}

/** Reloads the dashboard, checks alice is still signed in, and returns the provider's refresh count. */
async function reloadAsAlice(page: Page, idp: Idp) {
  await page.reload();
  await expect(page.getByTestId('viewer-username'), 'still signed in after a reload').toHaveText(ALICE.username);
  return idp.refreshCount();
}

test.describe('single sign-on sessions that renew with the provider', () => {
  test.use({ sso: { accessTokenTtl: ACCESS_TOKEN_TTL }, pulseEnv: OFFLINE_ACCESS });

  test('stay signed in across several refreshes', async ({ page, pulse, idp }) => {
    const authorize = await signInWithConsent(page, pulse, idp, 'alice');
    expect(authorize.prompt).toBe('consent');
    expect(authorize.scope.split(' ')).toContain('offline_access');
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });

    // Each reload after the access token is due makes Pulse refresh it (rotating the refresh
    // token); an assertion failing inside the callback fails the poll at once.
    await expect
      .poll(() => reloadAsAlice(page, idp), { message: 'refresh grants issued by the provider', timeout: 30_000 })
      .toBeGreaterThanOrEqual(3);
    expect(idp.refusedRefreshCount(), 'refused refreshes (a reused rotated token would be one)').toBe(0);
    expect(idp.logs()).not.toContain('grant.error');
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });

    // The Sessions screen calls it a session that renews with the provider.
    await page.getByRole('link', { name: 'Sessions' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/settings/security/sessions`);
    const row = page.getByTestId('session-row');
    await expect(row).toHaveCount(1);
    await expect(row).toContainText('This browser');
    await expect(row).toContainText('Single sign-on');
    await expect(row).toContainText('Renews with provider');
  });

  test('concurrent requests of a due session share one refresh', async ({ page, pulse, idp }) => {
    await signInWithConsent(page, pulse, idp, 'alice');
    await expect(page.getByTestId('viewer-username')).toHaveText(ALICE.username);
    const before = idp.refreshCount();

    // Bursts of simultaneous page loads with the session's cookie until one burst finds the token
    // due: that burst must refresh exactly once (the others wait and adopt the new tokens; a
    // second refresh would reuse the rotated refresh token and get the grant revoked).
    await expect
      .poll(
        async () => {
          const responses = await Promise.all(Array.from({ length: 6 }, () => page.request.get('/')));
          for (const response of responses) {
            expect(response.status()).toBe(200);
            expect(new URL(response.url()).pathname, 'a concurrent request was signed out').toBe('/');
          }
          return idp.refreshCount();
        },
        { message: 'refresh grants issued by the provider', timeout: 30_000 },
      )
      .toBeGreaterThan(before);
    expect(idp.refreshCount(), 'refreshes for one burst of a due session').toBe(before + 1);
    expect(idp.refusedRefreshCount()).toBe(0);
    await page.reload();
    await expect(page.getByTestId('viewer-username')).toHaveText(ALICE.username);
  });

  test('a grant revoked at the provider ends the session at the next refresh', async ({ page, pulse, idp }) => {
    await signInWithConsent(page, pulse, idp, 'alice');
    await expect(page.getByTestId('viewer-username')).toHaveText(ALICE.username);
    // One successful refresh first, so the refusal below is the revocation's doing.
    await expect
      .poll(() => reloadAsAlice(page, idp), { message: 'refresh grants issued by the provider', timeout: 30_000 })
      .toBeGreaterThanOrEqual(1);

    expect(await idp.revokeAllGrants(), 'grants revoked at the provider').toBe(1);

    // Until the access token is due Pulse does not ask the provider; the first page load after
    // that is refused and lands on the login page.
    await expect
      .poll(
        async () => {
          await page.goto('/');
          return currentLocation(page).pathname;
        },
        { message: 'where a page load of / lands after the revocation', timeout: 30_000 },
      )
      .toBe('/login');
    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { session_ended: 'idp_refused', returnTo: '/' },
    });
    await waitForHydration(page);
    await expect(page.getByRole('alert')).toHaveText(SESSION_ENDED_AT_IDP);
    expect(idp.refusedRefreshCount(), 'refresh attempts the provider refused').toBe(1);
    expect(idp.logs()).toMatch(/grant\.error: invalid_grant/);

    // The session is gone, not retried: a plain redirect to the login page, no new refresh attempt.
    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
    expect(currentLocation(page).params.session_ended).toBeUndefined();
    await expect(page.getByTestId('viewer-username')).toHaveCount(0);
    expect(idp.refusedRefreshCount()).toBe(1);
  });
});

/** Signs in with the local form, hydrated or as a plain form post. */
async function signInLocally(page: Page, pulse: PulseServer, javaScriptEnabled: boolean) {
  if (javaScriptEnabled) {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    return;
  }
  await page.goto('/login');
  await submitLogin(page, ADMIN.username, ADMIN.password);
  await expect(page).toHaveURL(`${pulse.baseURL}/`);
  await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
}

for (const javaScriptEnabled of [true, false]) {
  test.describe(`the sessions screen ${javaScriptEnabled ? 'with' : 'without'} JavaScript`, () => {
    test.use({ pulseEnv: adminEnv, javaScriptEnabled });

    test('revoking another browser signs it out at its next request', async ({ page, pulse, browser }) => {
      // Browser B: another context (its own cookies), always with JavaScript (browser.newContext
      // would otherwise take this describe's javaScriptEnabled from test.use).
      const other = await browser.newContext({ baseURL: pulse.baseURL, javaScriptEnabled: true });
      try {
        const otherPage = await other.newPage();
        await signIn(otherPage, pulse.baseURL, ADMIN.username, ADMIN.password);

        // Browser A (this test's page): the Sessions link in the top bar.
        await signInLocally(page, pulse, javaScriptEnabled);
        await page.getByRole('link', { name: 'Sessions' }).click();
        await expect(page).toHaveURL(`${pulse.baseURL}/settings/security/sessions`);
        if (javaScriptEnabled) await waitForHydration(page);
        else await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

        const rows = page.getByTestId('session-row');
        await expect(rows).toHaveCount(2);
        // An administrator sees whose sessions they are.
        await expect(page.getByRole('columnheader', { name: 'User' })).toBeVisible();
        const mine = rows.filter({ hasText: 'This browser' });
        const theirs = rows.filter({ hasNotText: 'This browser' });
        await expect(mine).toHaveCount(1);
        await expect(theirs).toHaveCount(1);
        await expect(mine.getByRole('button')).toHaveText('Sign out');
        await expect(theirs.getByRole('button')).toHaveText('Revoke');
        for (const row of [mine, theirs]) {
          await expect(row).toContainText(ADMIN.username);
          await expect(row).toContainText('Password');
        }

        await theirs.getByRole('button', { name: 'Revoke' }).click();
        await expect(rows).toHaveCount(1);
        await expect(rows).toContainText('This browser');
        // Still (or, without JavaScript, back) on the Sessions screen, without an error. (The
        // no-JavaScript post redirects to the screen with an empty query: `…/sessions?`.)
        expect(currentLocation(page)).toEqual({ origin: pulse.baseURL, pathname: '/settings/security/sessions', params: {} });
        await expect(page.getByRole('alert')).toHaveCount(0);

        // B's next request is unauthenticated.
        await otherPage.goto('/');
        expect(currentLocation(otherPage)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
        await expect(otherPage.getByTestId('viewer-username')).toHaveCount(0);

        // A is still signed in.
        await page.goto('/');
        await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
      } finally {
        await other.close();
      }
    });
  });
}

test.describe('a session ended from the sessions screen', () => {
  test.use({ pulseEnv: adminEnv });

  // A password session ended in Pulse must not be told it ended at the identity provider.
  test('is told it was ended from the Sessions screen, not at the identity provider', async ({ page, pulse, browser }) => {
    const other = await browser.newContext({ baseURL: pulse.baseURL, javaScriptEnabled: true });
    try {
      const otherPage = await other.newPage();
      await signIn(otherPage, pulse.baseURL, ADMIN.username, ADMIN.password);
      await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
      await gotoHydrated(page, '/settings/security/sessions');
      await page.getByTestId('session-row').filter({ hasNotText: 'This browser' }).getByRole('button', { name: 'Revoke' }).click();
      await expect(page.getByTestId('session-row')).toHaveCount(1);

      await otherPage.goto('/');
      expect(currentLocation(otherPage).pathname).toBe('/login');
      await waitForHydration(otherPage);
      await expect(otherPage.getByText(SESSION_ENDED_AT_IDP)).toHaveCount(0);
      await expect(otherPage.getByRole('alert')).toContainText('Your session was ended from the Sessions screen.');
    } finally {
      await other.close();
    }
  });
});
