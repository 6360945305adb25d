/**
 * The `pulse` fixture: a fresh Pulse server per test, on a free port, with its own data directory.
 *
 *   PULSE_BIN         the server binary (default <repo>/target/debug/pulse, built by `cargo leptos build`)
 *   LEPTOS_SITE_ROOT  the built site with pkg/pulse.{js,wasm,css} (default <repo>/target/site)
 *
 * Tests pass extra server environment with `test.use({ pulseEnv: { ... } })`. The `baseURL`
 * option follows the server, so `page.goto('/login')` reaches the test's own Pulse.
 *
 * Single sign-on: `test.use({ sso: true })` gives the test its own OpenID provider (idp/idp.mjs, npm
 * oidc-provider) and starts Pulse with OIDC_* pointing at it (`pulseEnv` still wins, e.g. for
 * OIDC_ALLOWED_GROUPS). The order is forced by the dynamic ports: bind the provider (the issuer URL
 * needs its port) → start Pulse with that issuer → start the provider with Pulse's callback and
 * post-logout URLs. Pulse contacts the provider only at the first sign-in, so this is safe. The
 * `idp` fixture is that provider; it is closed after the test.
 */
import { test as base, expect, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bindIdp, CLIENT_ID, CLIENT_SECRET, type Idp } from '../idp/idp.mjs';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
const PULSE_BIN = process.env.PULSE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'pulse');
const SITE_ROOT = process.env.LEPTOS_SITE_ROOT || path.join(REPO_ROOT, 'target', 'site');
/** How long the server may take to print its listening line (a guard, not a delay). */
const STARTUP_TIMEOUT_MS = 30_000;

/** Servers still running; killed if the worker process goes away mid-test. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const LISTENING = /Pulse listening on (http:\/\/127\.0\.0\.1:\d+)/;
const SETUP_LINK = /No administrator yet\. Create one at: (\S+\/setup\?token=([A-Za-z0-9_-]+))/;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

export interface PulseServer {
  /** e.g. http://127.0.0.1:40123 (no trailing slash). */
  baseURL: string;
  /** The first-run link from the log, present only while no administrator exists. */
  setupUrl?: string;
  setupToken?: string;
  dataDir: string;
  /** Everything the server printed so far (stdout and stderr, in arrival order). */
  logs(): string;
}

/** `sso` option: true, or the provider settings a test needs to change. */
export interface SsoOptions {
  /** Access-token lifetime at the provider, in seconds (default 3600). */
  accessTokenTtl?: number;
  /** Registers `<pulse>/<path>` as the client's back-channel logout URI. */
  backchannelLogoutPath?: string;
  /** Starts Pulse without OIDC_* variables: the test configures single sign-on in the UI. */
  configureInUi?: boolean;
}

type Fixtures = {
  /** Extra environment for this test's server, e.g. PULSE_AUTH_USER / PULSE_AUTH_PASS. */
  pulseEnv: Record<string, string>;
  /** Gives the test an OpenID provider and points Pulse's single sign-on at it. */
  sso: boolean | SsoOptions;
  /** The provider, bound but not started (internal: started by `pulse`, which needs its issuer). */
  boundIdp: Idp | undefined;
  pulse: PulseServer;
  /** The test's started OpenID provider; needs `test.use({ sso: true })`. */
  idp: Idp;
};

/** Pulse's SSO settings for a provider at `issuer` (the scopes include the `groups` claim). */
export function ssoEnv(issuer: string): Record<string, string> {
  return {
    OIDC_ENABLED: 'true',
    OIDC_ISSUER_URL: issuer,
    OIDC_CLIENT_ID: CLIENT_ID,
    OIDC_CLIENT_SECRET: CLIENT_SECRET,
    OIDC_SCOPES: 'openid profile email groups',
  };
}

function pulseEnvironment(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Start from the runner's environment without any PULSE_* settings that could leak in.
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PULSE_')) env[key] = value;
  }
  return {
    ...env,
    LEPTOS_SITE_ROOT: SITE_ROOT,
    PULSE_DATA_DIR: dataDir,
    PULSE_LISTEN: '127.0.0.1:0',
    RUST_LOG: 'info',
    NO_COLOR: '1',
    ...extra,
  };
}

async function startPulse(extraEnv: Record<string, string>) {
  if (!existsSync(PULSE_BIN)) {
    throw new Error(`Pulse binary not found at ${PULSE_BIN}. Build it with \`cargo leptos build\` in ${REPO_ROOT}, or set PULSE_BIN.`);
  }
  if (!existsSync(path.join(SITE_ROOT, 'pkg'))) {
    throw new Error(`Built site not found at ${SITE_ROOT}/pkg. Build it with \`cargo leptos build\`, or set LEPTOS_SITE_ROOT.`);
  }
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pulse-e2e-'));
  let output = '';
  const child = spawn(PULSE_BIN, [], {
    cwd: dataDir,
    env: pulseEnvironment(dataDir, extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));

  const started = new Promise<{ baseURL: string; setupUrl?: string; setupToken?: string }>((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error, value?: { baseURL: string; setupUrl?: string; setupToken?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(guard);
      if (error) reject(error);
      else resolve(value!);
    };
    const guard = setTimeout(
      () => finish(new Error(`Pulse did not report "Pulse listening on …" within ${STARTUP_TIMEOUT_MS / 1000} s. Output:\n${output}`)),
      STARTUP_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8').replace(ANSI, '');
      const listening = LISTENING.exec(output);
      if (listening) {
        const setup = SETUP_LINK.exec(output);
        finish(undefined, { baseURL: listening[1], setupUrl: setup?.[1], setupToken: setup?.[2] });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', (err) => finish(new Error(`Could not start ${PULSE_BIN}: ${err.message}`)));
    // 'close' (not 'exit') so the output is complete when the error quotes it.
    child.once('close', (code, signal) =>
      finish(new Error(`Pulse exited (code ${code}, signal ${signal}) before it was listening. Output:\n${output}`)),
    );
  });

  try {
    const info = await started;
    return { child, dataDir, info, logs: () => output };
  } catch (err) {
    await stopPulse(child);
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    throw err;
  }
}

async function stopPulse(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(forced);
}

export const test = base.extend<Fixtures>({
  pulseEnv: [{}, { option: true }],
  sso: [false, { option: true }],

  boundIdp: async ({ sso }, use, testInfo) => {
    if (!sso) {
      await use(undefined);
      return;
    }
    const idp = await bindIdp({ log: () => {}, quiet: true });
    try {
      await use(idp);
    } finally {
      await idp.close();
      const logs = idp.logs();
      if (logs && testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach('idp.log', { body: logs, contentType: 'text/plain' });
      }
    }
  },

  pulse: async ({ pulseEnv, sso, boundIdp }, use, testInfo) => {
    const viaEnv = boundIdp && !(typeof sso === 'object' && sso.configureInUi);
    const env = viaEnv ? { ...ssoEnv(boundIdp.issuer), ...pulseEnv } : pulseEnv;
    const { child, dataDir, info, logs } = await startPulse(env);
    try {
      if (boundIdp) {
        const options = typeof sso === 'object' ? sso : {};
        await boundIdp.start({
          redirectUris: [`${info.baseURL}/api/oidc/callback`],
          postLogoutRedirectUris: [`${info.baseURL}/login?logged_out=1`],
          accessTokenTtl: options.accessTokenTtl,
          backchannelLogoutUri: options.backchannelLogoutPath
            ? `${info.baseURL}/${options.backchannelLogoutPath.replace(/^\//, '')}`
            : undefined,
        });
      }
      await use({ ...info, dataDir, logs });
    } finally {
      await stopPulse(child);
      if (testInfo.status !== testInfo.expectedStatus) {
        await testInfo.attach('pulse.log', { body: logs(), contentType: 'text/plain' });
      }
      rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    }
  },

  idp: async ({ boundIdp, pulse, context }, use) => {
    if (!boundIdp) throw new Error('The idp fixture needs `test.use({ sso: true })`.');
    void pulse; // started: the provider knows Pulse's URLs now.
    // The provider's pages @import a web font from fonts.googleapis.com; keep the browser on this
    // machine so a slow or black-holed network cannot delay their load events.
    await context.route(
      (url) => url.hostname !== '127.0.0.1' && url.hostname !== 'localhost',
      (route) => route.abort('blockedbyclient'),
    );
    await use(boundIdp);
  },

  baseURL: async ({ pulse }, use) => {
    await use(pulse.baseURL);
  },

  // Fails the test when the page panics, fails to hydrate or breaks its CSP. Without this a broken
  // hydration goes unnoticed: the no-JavaScript form still works, so sign-in would still "pass".
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && BROWSER_PROBLEM.test(message.text())) {
        problems.push(`console error: ${message.text()}`);
      }
    });
    await use(page);
    expect(problems, 'errors in the browser console').toEqual([]);
  },
});

/** Console errors that mean the front end is broken (HTTP 4xx responses are logged too, and are fine). */
const BROWSER_PROBLEM = /panicked|hydration|Content Security Policy|RuntimeError|unreachable/i;

export { expect };

/** Credentials handed to Pulse through PULSE_AUTH_USER / PULSE_AUTH_PASS. */
export const ADMIN = { username: 'e2e-admin', password: 'correct horse battery staple' } as const;
export const adminEnv = { PULSE_AUTH_USER: ADMIN.username, PULSE_AUTH_PASS: ADMIN.password };

/** Waits until the WebAssembly has hydrated the page (the app marks <body data-hydrated="true">). */
export async function waitForHydration(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Opens `url` and waits for hydration. */
export async function gotoHydrated(page: Page, url: string) {
  await page.goto(url);
  await waitForHydration(page);
}

export function readSetupTokenFile(dataDir: string): string | undefined {
  const file = path.join(dataDir, '.setup-token');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}
