import { test, expect, ADMIN, adminEnv } from './fixtures';
import { currentLocation } from './helpers';

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false, pulseEnv: adminEnv });

  test('the plain form signs in, reports errors, and signs out', async ({ page, pulse }) => {
    await page.goto('/login');
    await expect(page.getByRole('heading', { name: 'Welcome to Pulse' })).toBeVisible();
    // Nothing hydrates without JavaScript.
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

    // A wrong password: the server redirects back with the error in the URL.
    await page.locator('#username').fill(ADMIN.username);
    await page.locator('#password').fill('not the right password');
    await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
    await expect(page).toHaveURL(/\/login\?/);
    expect(currentLocation(page)).toMatchObject({
      pathname: '/login',
      params: { error: 'invalid_credentials', remaining: '4' },
    });
    await expect(page.getByRole('alert')).toHaveText(
      'Invalid username or password. 4 attempts left before a 15-minute lock.',
    );
    await expect(page.locator('#password')).toHaveValue('');

    // The right password lands on the dashboard.
    await page.locator('#username').fill(ADMIN.username);
    await page.locator('#password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
    await expect(page.getByTestId('viewer-role')).toHaveText('admin');

    // Signing out is a plain form post as well.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/login?logged_out=1`);
    await expect(page.getByText('You have been signed out.')).toBeVisible();
    await page.goto('/');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/' } });
  });

  test('the plain form keeps returnTo across a failed and a successful attempt', async ({ page, pulse }) => {
    await page.goto('/?from=test');
    expect(currentLocation(page)).toMatchObject({ pathname: '/login', params: { returnTo: '/?from=test' } });

    await page.locator('#username').fill(ADMIN.username);
    await page.locator('#password').fill('not the right password');
    await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
    await expect(page.getByRole('alert')).toContainText('Invalid username or password.');
    expect(currentLocation(page).params.returnTo).toBe('/?from=test');

    await page.locator('#username').fill(ADMIN.username);
    await page.locator('#password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in to Pulse' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/?from=test`);
    await expect(page.getByTestId('viewer-username')).toHaveText(ADMIN.username);
  });
});
