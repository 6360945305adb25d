/**
 * Single sign-on access rules against a real OpenID provider (see sso.spec.ts): allowed groups,
 * admin groups, SSO users next to local accounts, and hiding the local form.
 * Provider users: alice (pulse-admins, pulse-users), bob (pulse-users), mallory (contractors).
 */
import { test, expect, ADMIN, adminEnv, gotoHydrated, waitForHydration } from './fixtures';
import {
  ALICE,
  BOB,
  SSO_BUTTON,
  currentLocation,
  expectSsoDashboard,
  signInWithSso,
  submitLogin,
} from './helpers';

const HIDDEN_NOTE = 'Local sign-in is hidden by your administrator.';

test.describe('single sign-on with an allowed-groups list', () => {
  test.use({ sso: true, pulseEnv: { OIDC_ALLOWED_GROUPS: 'pulse-users' } });

  test('a user outside the allowed groups is turned away, not signed in', async ({ page, pulse, idp }) => {
    await page.goto('/?from=sso');
    await waitForHydration(page);
    await signInWithSso(page, pulse.baseURL, idp.issuer, 'mallory');

    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { oidc: 'error', oidc_error: 'group_restricted' },
    });
    await waitForHydration(page);
    await expect(page.getByRole('alert')).toHaveText(
      'Your account is not in a group allowed to use Pulse. Ask your administrator.',
    );
    await expect(page.getByRole('link', { name: SSO_BUTTON })).toBeVisible();

    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
    await expect(page.getByTestId('viewer-username')).toHaveCount(0);
  });
});

test.describe('single sign-on with admin groups', () => {
  // The allow list is on too, so these also show that allowed users get through it.
  test.use({ sso: true, pulseEnv: { OIDC_ALLOWED_GROUPS: 'pulse-users', OIDC_ADMIN_GROUPS: 'pulse-admins' } });

  for (const [user, role] of [
    [BOB, 'viewer'],
    [ALICE, 'admin'],
  ] as const) {
    test(`${user.username} (${user.groups}) signs in as ${role}`, async ({ page, pulse, idp }) => {
      await gotoHydrated(page, '/login');
      await signInWithSso(page, pulse.baseURL, idp.issuer, user.username);
      await expect(page).toHaveURL(`${pulse.baseURL}/`);
      await waitForHydration(page);
      await expectSsoDashboard(page, { ...user, role });
    });
  }
});

test.describe('single sign-on next to a local administrator', () => {
  test.use({ sso: true, pulseEnv: { ...adminEnv, OIDC_ADMIN_GROUPS: 'pulse-admins' } });

  test("an SSO user with the local admin's name is a separate viewer account", async ({ page, pulse, idp }) => {
    // Anyone can pick this login name at this provider; it must not open the local admin account.
    await gotoHydrated(page, '/login');
    await signInWithSso(page, pulse.baseURL, idp.issuer, ADMIN.username);
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await waitForHydration(page);
    await expectSsoDashboard(page, {
      username: ADMIN.username,
      email: `${ADMIN.username}@example.com`,
      groups: 'none',
      role: 'viewer',
    });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'You have been signed out.' })).toBeVisible();
    await waitForHydration(page);
    await submitLogin(page, ADMIN.username, ADMIN.password);
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
    await expect(page.getByTestId('viewer-role')).toHaveText('admin');
    await expect(page.getByTestId('viewer-method')).toHaveText('username and password');
  });
});

test.describe('hidden local sign-in', () => {
  test.describe('with single sign-on enabled', () => {
    test.use({ sso: true, pulseEnv: { ...adminEnv, PULSE_AUTH_HIDE_LOCAL_LOGIN: 'true' } });

    test('the form is hidden, and ?show_local=true brings it back and it works', async ({ page, pulse }) => {
      await gotoHydrated(page, '/login');
      await expect(page.getByRole('link', { name: SSO_BUTTON })).toBeVisible();
      await expect(page.getByText(HIDDEN_NOTE)).toBeVisible();
      await expect(page.locator('#password')).toHaveCount(0);
      await expect(page.locator('.divider')).toHaveCount(0);

      await gotoHydrated(page, '/login?show_local=true');
      await expect(page.getByRole('link', { name: SSO_BUTTON })).toBeVisible();
      await expect(page.locator('.divider')).toHaveText('or');
      await expect(page.getByText(HIDDEN_NOTE)).toHaveCount(0);
      await expect(page.locator('#password')).toBeVisible();

      await submitLogin(page, ADMIN.username, ADMIN.password);
      await expect(page).toHaveURL(`${pulse.baseURL}/`);
      await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
      await expect(page.getByTestId('viewer-method')).toHaveText('username and password');
    });
  });

  test.describe('with single sign-on enabled, without JavaScript', () => {
    test.use({
      sso: true,
      javaScriptEnabled: false,
      pulseEnv: { ...adminEnv, PULSE_AUTH_HIDE_LOCAL_LOGIN: 'true' },
    });

    test('a failed attempt on ?show_local=true keeps the form', async ({ page, pulse }) => {
      // The failed attempt's redirect must keep show_local=true, or the page reporting the error
      // has no form to retry with.
      await page.goto('/login?show_local=true&returnTo=%2F%3Ffrom%3Dlocal');
      await page.locator('#username').fill(ADMIN.username);
      await page.locator('#password').fill('not the right password');
      await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
      await expect(page.getByRole('alert')).toContainText('Invalid username or password.');
      expect(currentLocation(page).params.returnTo).toBe('/?from=local');
      // The form must still be there to try again. (Without JavaScript the page is final once
      // loaded, so counting now is enough; no need to wait out a retrying assertion.)
      expect(await page.locator('#password').count(), 'the local form after a failed attempt').toBe(1);

      await page.locator('#username').fill(ADMIN.username);
      await page.locator('#password').fill(ADMIN.password);
      await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
      await expect(page).toHaveURL(`${pulse.baseURL}/?from=local`);
      await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
    });
  });

  test.describe('with single sign-on not enabled', () => {
    test.use({ pulseEnv: { ...adminEnv, PULSE_AUTH_HIDE_LOCAL_LOGIN: 'true' } });

    test('the form is shown anyway, so nobody is locked out', async ({ page, pulse }) => {
      await gotoHydrated(page, '/login');
      await expect(page.locator('#password')).toBeVisible();
      await expect(page.getByText(HIDDEN_NOTE)).toHaveCount(0);
      await expect(page.getByRole('link', { name: SSO_BUTTON })).toHaveCount(0);

      await submitLogin(page, ADMIN.username, ADMIN.password);
      await expect(page).toHaveURL(`${pulse.baseURL}/`);
      await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
    });
  });
});

