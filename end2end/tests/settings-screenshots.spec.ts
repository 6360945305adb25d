/**
 * Documentation screenshots of the settings screens (not assertions beyond "the screen is there"):
 * end2end/screenshots/settings-{sso,authentication,sessions,audit}-{light,dark}.png, shown in the
 * README. The SSO screen is pictured after a passed Test connection against the real provider.
 */
import path from 'node:path';
import type { Page } from '@playwright/test';
import { CLIENT_ID, CLIENT_SECRET } from '../idp/idp.mjs';
import { test, expect, ADMIN, adminEnv, gotoHydrated } from './fixtures';
import { signIn } from './helpers';

const SCREENSHOT_DIR = path.resolve(__dirname, '..', 'screenshots');

async function shoot(page: Page, name: string) {
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({
    path: path.join(SCREENSHOT_DIR, `${name}.png`),
    fullPage: true,
    animations: 'disabled',
    caret: 'hide',
  });
}

for (const colorScheme of ['light', 'dark'] as const) {
  test.describe(`settings screens, ${colorScheme}`, () => {
    test.use({
      colorScheme,
      pulseEnv: adminEnv,
      sso: { configureInUi: true },
      viewport: { width: 1280, height: 800 },
    });

    test(`screenshots: settings-*-${colorScheme}.png`, async ({ page, pulse, idp }) => {
      await signIn(page, pulse.baseURL, ADMIN.username, ADMIN.password);

      await gotoHydrated(page, '/settings/security/sso');
      await page.getByLabel('Enable single sign-on').check();
      await page.locator('#issuer_url').fill(idp.issuer);
      await page.locator('#client_id').fill(CLIENT_ID);
      await page.locator('#client_secret').fill(CLIENT_SECRET);
      await page.locator('#admin_groups').fill('pulse-admins');
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      await expect(page.getByTestId('sso-banner')).toContainText('Saved');
      await page.getByRole('button', { name: 'Test connection' }).click();
      await expect(page.locator('#checklist-heading')).toContainText('all checks passed', { timeout: 15_000 });
      await page.locator('#client_id').focus();
      await page.locator('#client_id').blur();
      await shoot(page, `settings-sso-${colorScheme}`);

      for (const screen of ['authentication', 'sessions', 'audit']) {
        await gotoHydrated(page, `/settings/security/${screen}`);
        await expect(page.locator('.settings-header h1')).toBeVisible();
        await shoot(page, `settings-${screen}-${colorScheme}`);
      }
    });
  });
}
