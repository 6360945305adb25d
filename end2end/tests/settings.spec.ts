/**
 * The admin screens, Settings › Security: single sign-on configured entirely through the UI against
 * the real provider (npm oidc-provider, idp/idp.mjs), Test connection, hiding the local form, the
 * no-JavaScript path, and what a viewer sees. Screenshots of each screen: settings-screenshots.spec.ts.
 */
import type { Page } from '@playwright/test';
import { CLIENT_ID, CLIENT_SECRET } from '../idp/idp.mjs';
import { test, expect, ADMIN, adminEnv, gotoHydrated, waitForHydration } from './fixtures';
import { ALICE, SSO_BUTTON, expectSsoDashboard, signIn, signInWithSso } from './helpers';

const SSO_PAGE = '/settings/security/sso';
const AUTH_PAGE = '/settings/security/authentication';

/** Fills the provider part of the SSO form for the test's provider (not saved). */
async function fillProvider(page: Page, issuer: string, secret: string) {
  await page.getByLabel('Enable single sign-on').check();
  await page.locator('#issuer_url').fill(issuer);
  await page.locator('#client_id').fill(CLIENT_ID);
  await page.locator('#client_secret').fill(secret);
  await page.locator('#scopes').fill('openid profile email groups');
  await page.locator('#admin_groups').fill('pulse-admins');
}

async function runTestConnection(page: Page) {
  const button = page.getByRole('button', { name: 'Test connection' });
  await button.click();
  await expect(button).toBeEnabled({ timeout: 15_000 });
  return page.locator('.checklist-panel');
}

test.describe('single sign-on configured in the UI', () => {
  test.use({ sso: { configureInUi: true }, pulseEnv: adminEnv });

  test('an admin tests, saves, signs out and signs in with SSO', async ({ page, pulse, idp }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    await gotoHydrated(page, SSO_PAGE);
    await expect(page.getByRole('heading', { name: 'Single sign-on (OIDC)', level: 1 })).toBeVisible();
    await expect(page.getByTestId('redirect-url-sent')).toHaveText(`${pulse.baseURL}/api/oidc/callback`);
    await expect(page.getByTestId('secret-state')).toHaveText('Not set');
    await expect(page.getByTestId('admin-groups-warning')).toBeVisible();

    await fillProvider(page, idp.issuer, CLIENT_SECRET);
    await expect(page.getByTestId('admin-groups-warning')).toBeHidden();
    const checklist = await runTestConnection(page);
    await expect(checklist).toContainText('all checks passed');
    await expect(checklist.locator('li[data-status="passed"]')).toHaveCount(6);

    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.getByTestId('sso-banner')).toContainText('Saved');
    await expect(page.getByTestId('secret-state')).toHaveText('Set');
    await expect(page.locator('#client_secret')).toHaveValue('');

    // The login page offers SSO now, without a restart.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login/);
    await expect(page.getByRole('link', { name: SSO_BUTTON })).toBeVisible();
    await signInWithSso(page, pulse.baseURL, idp.issuer, 'alice');
    await expectSsoDashboard(page, { ...ALICE, role: 'admin' });
  });

  test('a wrong client secret makes Test connection say so', async ({ page, pulse, idp }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    await gotoHydrated(page, SSO_PAGE);
    await fillProvider(page, idp.issuer, 'not-the-secret');
    const checklist = await runTestConnection(page);
    const client = checklist.locator('li[data-status="failed"]');
    await expect(client).toHaveCount(1);
    await expect(client).toContainText('Client ID and secret');
    await expect(client).toContainText('invalid_client');
    await expect(checklist).toContainText('1 problem');
    // Nothing was saved.
    await page.reload();
    await expect(page.locator('#issuer_url')).toHaveValue('');
  });

  test('hiding the local form is refused until SSO works; ?show_local=true brings it back', async ({
    page,
    pulse,
    idp,
  }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    const hideButton = page.getByRole('button', { name: 'Hide the local login form' });
    await gotoHydrated(page, AUTH_PAGE);
    await expect(hideButton).toBeDisabled();
    await expect(page.getByTestId('hide-requires-sso')).toBeVisible();

    // Saved but never tested: still refused.
    await gotoHydrated(page, SSO_PAGE);
    await fillProvider(page, idp.issuer, CLIENT_SECRET);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.getByTestId('sso-banner')).toContainText('Saved');
    await gotoHydrated(page, AUTH_PAGE);
    await expect(hideButton).toBeDisabled();

    // Tested: allowed.
    await gotoHydrated(page, SSO_PAGE);
    await expect(await runTestConnection(page)).toContainText('all checks passed');
    await gotoHydrated(page, AUTH_PAGE);
    await hideButton.click();
    await expect(page.getByTestId('hide-state')).toHaveText('Hidden');

    await page.context().clearCookies();
    await gotoHydrated(page, '/login');
    await expect(page.getByRole('link', { name: SSO_BUTTON })).toBeVisible();
    await expect(page.locator('#password')).toHaveCount(0);
    await gotoHydrated(page, '/login?show_local=true');
    await expect(page.locator('#password')).toBeVisible();
  });

  test('inline validation names the field without a reload', async ({ page, pulse }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    await gotoHydrated(page, SSO_PAGE);
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    await page.locator('#scopes').fill('profile email');
    await page.locator('#display_name').focus();
    await expect(page.locator('#scopes-error')).toContainText('must include openid');
    await expect(page.locator('#scopes')).toHaveAttribute('aria-invalid', 'true');
    await page.locator('#issuer_url').fill('http://auth.example.com');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.locator('#issuer_url-error')).toContainText('https://');
    await expect(page.getByTestId('sso-banner')).toContainText('Nothing was saved');
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
  });
});

test.describe('fields set by environment variables', () => {
  test.use({
    pulseEnv: {
      ...adminEnv,
      OIDC_ISSUER_URL: 'https://auth.example.com/application/o/pulse/',
      OIDC_CLIENT_SECRET: 'secret-from-the-environment',
    },
  });

  test('are read-only one by one; the rest saves, and Reset discards edits', async ({ page, pulse }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    await gotoHydrated(page, SSO_PAGE);
    await expect(page.locator('#issuer_url')).toBeDisabled();
    await expect(page.locator('#issuer_url')).toHaveValue('https://auth.example.com/application/o/pulse/');
    await expect(page.getByTestId('managed-issuer_url')).toContainText('OIDC_ISSUER_URL');
    await expect(page.locator('#client_secret')).toBeDisabled();
    await expect(page.getByTestId('managed-client_secret')).toContainText('OIDC_CLIENT_SECRET');
    await expect(page.getByRole('button', { name: 'Clear stored secret' })).toHaveCount(0);
    await expect(page.locator('#client_id')).toBeEnabled();
    await expect(page.getByTestId('managed-client_id')).toHaveCount(0);

    await page.locator('#client_id').fill('pulse');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page.getByTestId('sso-banner')).toContainText('Saved');

    await page.locator('#display_name').fill('Not saved');
    await page.getByRole('button', { name: 'Reset' }).click();
    await expect(page.locator('#display_name')).toHaveValue('Single Sign-On');
    await page.reload();
    await expect(page.locator('#client_id')).toHaveValue('pulse');
    await expect(page.locator('#issuer_url')).toHaveValue('https://auth.example.com/application/o/pulse/');
  });
});

test.describe('the redirect URL', () => {
  test.use({ pulseEnv: adminEnv });

  test('is shown as Pulse sends it and the Copy button copies exactly that', async ({ page, pulse, context }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: pulse.baseURL });
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);
    await gotoHydrated(page, SSO_PAGE);
    const sent = `${pulse.baseURL}/api/oidc/callback`;
    await expect(page.getByTestId('redirect-url-sent')).toHaveText(sent);
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect(page.getByTestId('copy-status')).toHaveText('Copied');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(sent);
  });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false, pulseEnv: adminEnv });

  test('the SSO form saves, and reports errors next to the fields it keeps', async ({ page }) => {
    await page.goto('/login');
    await page.locator('#username').fill(ADMIN.username);
    await page.locator('#password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
    await page.goto(SSO_PAGE);

    await page.locator('#issuer_url').fill('ftp://auth.example.com');
    await page.locator('#display_name').fill('Company login');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page).toHaveURL(/result=invalid/);
    await expect(page.locator('#issuer_url-error')).toContainText('must be a full URL');
    await expect(page.locator('#issuer_url')).toHaveValue('ftp://auth.example.com');
    await expect(page.locator('#display_name')).toHaveValue('Company login');

    await page.locator('#issuer_url').fill('https://auth.example.com/application/o/pulse/');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await expect(page).toHaveURL(/result=saved/);
    await expect(page.getByTestId('sso-banner')).toContainText('Saved');
    await page.goto(SSO_PAGE);
    await expect(page.locator('#display_name')).toHaveValue('Company login');
  });
});

test.describe('a viewer', () => {
  test.use({ sso: true, pulseEnv: { OIDC_ADMIN_GROUPS: 'pulse-admins' } });

  test('cannot open the admin screens', async ({ page, pulse, idp }) => {
    await gotoHydrated(page, '/login');
    await signInWithSso(page, pulse.baseURL, idp.issuer, 'bob');
    for (const path of [SSO_PAGE, AUTH_PAGE, '/settings/security/audit']) {
      const response = await page.goto(path);
      expect(response?.status(), path).toBe(403);
      // Hydrated without errors (the fixture fails the test on any): an earlier attempt at lazy
      // routes broke hydration for single sign-on sessions, and only this wait showed it.
      await waitForHydration(page);
      await expect(page.locator('form[action="/settings/security/sso"]')).toHaveCount(0);
    }
    await expect(page.getByText('Only administrators')).toBeVisible();
  });
});
