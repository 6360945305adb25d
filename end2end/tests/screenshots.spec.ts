/**
 * Documentation screenshots of the login page (not assertions): end2end/screenshots/login-{light,dark}.png.
 * A fresh server with an administrator, the page hydrated, so the picture is the same every run.
 */
import path from 'node:path';
import { test, expect, adminEnv, gotoHydrated } from './fixtures';

const SCREENSHOT_DIR = path.resolve(__dirname, '..', 'screenshots');

for (const colorScheme of ['light', 'dark'] as const) {
  test.describe(`login page, ${colorScheme}`, () => {
    test.use({ colorScheme, pulseEnv: adminEnv, viewport: { width: 1280, height: 800 } });

    test(`screenshot: login-${colorScheme}.png`, async ({ page }) => {
      await gotoHydrated(page, '/login');
      await expect(page.getByRole('button', { name: 'Sign in to Pulse' })).toBeVisible();
      await page.evaluate(() => document.fonts.ready);
      await page.screenshot({
        path: path.join(SCREENSHOT_DIR, `login-${colorScheme}.png`),
        fullPage: true,
        animations: 'disabled',
        caret: 'hide',
      });
    });
  });
}
