import { test, expect, gotoHydrated, waitForHydration, readSetupTokenFile } from './fixtures';

test.describe('first run', () => {
  test('the setup link from the log creates the administrator and signs them in', async ({ page, pulse }) => {
    expect(pulse.setupUrl, `no setup link in the log:\n${pulse.logs()}`).toBeTruthy();
    expect(pulse.setupUrl!.startsWith(`${pulse.baseURL}/setup?token=`)).toBe(true);
    // The token in the log is the one in <data dir>/.setup-token.
    expect(readSetupTokenFile(pulse.dataDir)).toBe(pulse.setupToken);

    // Until then the login page says so.
    await gotoHydrated(page, '/login');
    await expect(page.getByRole('status').filter({ hasText: 'Pulse has no administrator yet' })).toBeVisible();

    await gotoHydrated(page, pulse.setupUrl!);
    await expect(page.getByRole('heading', { name: 'Set up Pulse' })).toBeVisible();
    await expect(page.locator('#username')).toHaveValue('admin');

    // A confirmation that differs is refused, keeping the username.
    await page.locator('#username').fill('first-admin');
    await page.locator('#password').fill('a long enough password');
    await page.locator('#confirm').fill('a different long password');
    await page.getByRole('button', { name: 'Create administrator' }).click();
    await expect(page.getByRole('alert')).toHaveText('The two passwords do not match.');
    await expect(page).toHaveURL(/\/setup\?/);
    await waitForHydration(page);
    await expect(page.locator('#username')).toHaveValue('first-admin');
    await expect(page.locator('#password')).toHaveValue('');

    // Matching passwords of 12+ characters create the admin, who lands on the dashboard signed in.
    await page.locator('#password').fill('a long enough password');
    await page.locator('#confirm').fill('a long enough password');
    await page.getByRole('button', { name: 'Create administrator' }).click();
    await expect(page).toHaveURL(`${pulse.baseURL}/`);
    await expect(page.getByTestId('viewer-username')).toHaveText('first-admin');
    await expect(page.getByTestId('viewer-role')).toHaveText('admin');
    await expect(page.getByTestId('viewer-method')).toHaveText('username and password');

    // The token is single-use: its file is gone and the link no longer offers the form.
    expect(readSetupTokenFile(pulse.dataDir)).toBeUndefined();
    await page.goto(pulse.setupUrl!);
    await expect(page.getByText('Pulse is already set up.')).toBeVisible();
    await expect(page.locator('#confirm')).toHaveCount(0);
  });
});
