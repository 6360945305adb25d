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
