import type { Page } from '@playwright/test';
import { expect, gotoHydrated } from './fixtures';

/** Signs in through the hydrated login form at the current page (which must be /login). */
export async function submitLogin(page: Page, username: string, password: string) {
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
}

/** Opens /login, waits for hydration and signs in; ends on the dashboard. */
export async function signIn(page: Page, baseURL: string, username: string, password: string) {
  await gotoHydrated(page, '/login');
  await submitLogin(page, username, password);
  await expect(page).toHaveURL(`${baseURL}/`);
  await expect(page.getByTestId('viewer-username')).toHaveText(username);
}

/** The page URL split into path and query parameters, for assertions independent of encoding. */
export function currentLocation(page: Page) {
  const url = new URL(page.url());
  return { origin: url.origin, pathname: url.pathname, params: Object.fromEntries(url.searchParams) };
}

/** The SSO button's label (OIDC_DISPLAY_NAME is not set in the tests). */
export const SSO_BUTTON = 'Continue with Single Sign-On';

/** The provider's dev login form (oidc-provider devInteractions): any password is accepted. */
export function providerLoginInput(page: Page) {
  return page.locator('input[name=login]');
}

/**
 * At the provider's login form: signs in as `login`, accepts the consent page when the provider
 * shows one (it does for a first grant in a provider session, not otherwise), and returns once the
 * browser is back on Pulse (`pulseBaseURL`), wherever Pulse sent it.
 */
export async function signInAtProvider(page: Page, pulseBaseURL: string, login: string) {
  const pulseOrigin = new URL(pulseBaseURL).origin;
  const backOnPulse = (url: URL) => url.origin === pulseOrigin;
  await expect(providerLoginInput(page)).toBeVisible();
  await providerLoginInput(page).fill(login);
  await page.locator('input[name=password]').fill('any password works here');
  await page.getByRole('button', { name: 'Sign-in', exact: true }).click();

  // Either a consent page or straight back to Pulse: wait for whichever comes first.
  const consent = page.getByRole('button', { name: 'Continue', exact: true });
  const next = await Promise.race([
    consent.waitFor({ state: 'visible' }).then(() => 'consent' as const),
    page.waitForURL(backOnPulse).then(() => 'pulse' as const),
  ]);
  if (next === 'consent') {
    await consent.click();
    await page.waitForURL(backOnPulse);
  }
}

/**
 * On Pulse's login page (hydrated or not): follows "Continue with Single Sign-On" and waits for the
 * provider's login form at `issuer`. (A provider that still has a session skips its form and sends
 * the browser straight back to Pulse; then this fails.)
 */
export async function startSso(page: Page, issuer: string) {
  await page.getByRole('link', { name: SSO_BUTTON }).click();
  await expect(providerLoginInput(page)).toBeVisible();
  expect(new URL(page.url()).origin).toBe(new URL(issuer).origin);
}

/** From Pulse's login page: SSO button → provider login form as `login` → back on Pulse. */
export async function signInWithSso(page: Page, pulseBaseURL: string, issuer: string, login: string) {
  await startSso(page, issuer);
  await signInAtProvider(page, pulseBaseURL, login);
}

/** The provider's users as Pulse's dashboard shows them (idp/idp.mjs USERS). */
export const ALICE = { username: 'alice', email: 'alice@example.com', groups: 'pulse-admins, pulse-users' } as const;
export const BOB = { username: 'bob', email: 'bob@example.com', groups: 'pulse-users' } as const;

/** Checks the dashboard of a single sign-on session. */
export async function expectSsoDashboard(
  page: Page,
  viewer: { username: string; email: string; groups: string; role: 'admin' | 'viewer' },
) {
  await expect(page.getByTestId('viewer-username')).toHaveText(viewer.username);
  await expect(page.getByTestId('viewer-email')).toHaveText(viewer.email);
  await expect(page.getByTestId('viewer-groups')).toHaveText(viewer.groups);
  await expect(page.getByTestId('viewer-role')).toHaveText(viewer.role);
  await expect(page.getByTestId('viewer-method')).toHaveText('single sign-on');
}
