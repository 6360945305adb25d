import type { Request } from '@playwright/test';
import { test, expect, ADMIN, adminEnv, gotoHydrated, waitForHydration } from './fixtures';
import { currentLocation, signIn, submitLogin } from './helpers';

const WRONG_PASSWORD_MESSAGE = 'Invalid username or password. 4 attempts left before a 15-minute lock.';

test.describe('sign-in with JavaScript', () => {
  test.use({ pulseEnv: adminEnv });

  test('signs in over the JSON API without reloading the page', async ({ page, pulse }) => {
    await gotoHydrated(page, '/login');

    // Any reload or form post is a navigation request of the main frame; record them all.
    const navigations: string[] = [];
    const apiLogins: Request[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
        navigations.push(`${request.method()} ${url.pathname}${url.search}`);
      }
      if (url.pathname === '/api/login') apiLogins.push(request);
    });
    // A marker on window survives only as long as this document does.
    await page.evaluate(() => {
      (window as unknown as { __pulseMarker?: string }).__pulseMarker = 'same-document';
    });

    // A wrong password: the error appears inline and the document is still the same.
    const isApiLogin = (r: { url(): string }) => new URL(r.url()).pathname === '/api/login';
    // Bounded: if the form posts natively instead, no /api/login response will ever come.
    const refused = page.waitForResponse(isApiLogin, { timeout: 10_000 });
    await submitLogin(page, ADMIN.username, 'not the right password');
    expect((await refused).status()).toBe(401);
    await expect(page.getByRole('alert')).toHaveText(WRONG_PASSWORD_MESSAGE);
    expect(await page.evaluate(() => (window as unknown as { __pulseMarker?: string }).__pulseMarker)).toBe(
      'same-document',
    );
    expect(navigations).toEqual([]);
    expect(apiLogins).toHaveLength(1);
    expect(apiLogins[0].method()).toBe('POST');
    expect(apiLogins[0].postDataJSON()).toMatchObject({ username: ADMIN.username });

    // The right password: one API call, then one navigation (GET /) to the dashboard.
    const accepted = page.waitForResponse(isApiLogin, { timeout: 10_000 });
    await submitLogin(page, ADMIN.username, ADMIN.password);
    expect((await accepted).ok()).toBe(true);
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
    await expect(page.getByTestId('viewer-role')).toHaveText('admin');
    await expect(page.getByTestId('viewer-method')).toHaveText('username and password');
    expect(apiLogins).toHaveLength(2);
    expect(navigations).toEqual(['GET /']);
  });

  test('a wrong password is reported inline as an alert and the password is cleared', async ({ page }) => {
    await gotoHydrated(page, '/login');
    await expect(page.getByRole('heading', { name: 'Welcome to Pulse' })).toBeVisible();
    await expect(page.getByRole('alert')).toHaveCount(0);

    await submitLogin(page, ADMIN.username, 'not the right password');

    const alert = page.getByRole('alert');
    await expect(alert).toHaveText(WRONG_PASSWORD_MESSAGE);
    // The alert sits in an assertive live region so screen readers announce it.
    await expect(page.locator('[aria-live="assertive"]')).toContainText(WRONG_PASSWORD_MESSAGE);
    await expect(page.locator('#password')).toHaveValue('');
    await expect(page.locator('#password')).toBeFocused();
    await expect(page.locator('#username')).toHaveValue(ADMIN.username);
    await expect(page.getByRole('button', { name: 'Sign in to Pulse' })).toBeEnabled();
    expect(currentLocation(page).pathname).toBe('/login');
  });

  test('signing out returns to the login page, and the dashboard needs a new sign-in', async ({ page, pulse }) => {
    await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);

    // Signed in, /login goes straight on to the dashboard.
    await page.goto('/login');
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await waitForHydration(page);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/login?logged_out=1`);
    await expect(page.getByRole('status').filter({ hasText: 'You have been signed out.' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Sign in to Pulse' })).toBeVisible();

    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
    await expect(page.getByTestId('viewer-username')).toHaveCount(0);
  });

  test('a protected page sends you back where you were going after sign-in', async ({ page, pulse }) => {
    await page.goto('/?from=test');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/?from=test' } });
    await waitForHydration(page);
    await expect(page.locator('input[name=returnTo]')).toHaveValue('/?from=test');

    await submitLogin(page, ADMIN.username, ADMIN.password);
    await expect(page).toHaveURL(`${pulse.baseURL}/?from=test`);
    await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
  });
});
