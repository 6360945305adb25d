// A real OpenID provider (npm oidc-provider, OpenID Certified) for end-to-end tests and for trying
// SSO locally. Two phases because of ports: bind first (the issuer URL needs the port), start Pulse
// with that issuer, then start the provider with Pulse's callback URL as the registered redirect URI.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

// oidc-provider is imported on first use (see loadProvider) so that `quiet` can also catch the
// warning it prints while loading.
let Provider;

/** The documented users. Any other login name works too and becomes `sub`, with no groups. */
export const USERS = {
  alice: { email: 'alice@example.com', name: 'Alice Admin', groups: ['pulse-admins', 'pulse-users'] },
  bob: { email: 'bob@example.com', name: 'Bob Viewer', groups: ['pulse-users'] },
  mallory: { email: 'mallory@elsewhere.org', name: 'Mallory Outsider', groups: ['contractors'] },
};

export const CLIENT_ID = 'pulse';
export const CLIENT_SECRET = 'pulse-dev-secret-change-me';

/** Provider events worth a line in the log (all of them are failures). */
const LOGGED_EVENTS = [
  'authorization.error',
  'grant.error',
  'end_session.error',
  'userinfo.error',
  'backchannel.error',
  'revocation.error',
];

/**
 * Runs `fn` with oidc-provider's own console notices ("oidc-provider WARNING: …", e.g. the Node
 * version, the in-memory adapter, devInteractions) sent to `record` instead of the console.
 */
async function divertProviderNotices(record, fn) {
  const { warn, info } = console;
  const divert = (original) => (...args) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) record(args.join(' '));
    else original.apply(console, args);
  };
  console.warn = divert(warn);
  console.info = divert(info);
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

async function loadProvider() {
  Provider ??= (await import('oidc-provider')).default;
  return Provider;
}

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** A minimal page without the defaults' web-font import (tests run offline). */
function page(title, body) {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 30rem; margin: 2rem auto">${body}</body></html>`;
}

/**
 * Binds a listener (port 0 = any free port) and returns { issuer, start, close, logs }.
 * `log` receives one line per provider failure (default: stderr); `logs()` returns them all.
 * `quiet` sends oidc-provider's development-mode warnings to `log` too instead of the console.
 */
export async function bindIdp({ port = 0, host = '127.0.0.1', log = (line) => console.error(line), quiet = false } = {}) {
  const lines = [];
  const record = (line) => {
    lines.push(line);
    log(line);
  };
  const server = http.createServer((req, res) => {
    res.statusCode = 503;
    res.end('provider not started yet');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const issuer = `http://${host}:${server.address().port}`;
  let provider;
  // What the tests observe of the token endpoint: refresh grants issued and refused, and every grant
  // (consent) the provider has stored, so a test can revoke them server-side (Pulse never hands out
  // its refresh token, so the revocation endpoint is of no use to a test).
  let refreshes = 0;
  let refusedRefreshes = 0;
  const grantIds = new Set();

  /**
   * Starts the provider.
   * @param {{ redirectUris: string[], postLogoutRedirectUris?: string[], accessTokenTtl?: number,
   *           backchannelLogoutUri?: string }} options
   */
  async function start({ redirectUris, postLogoutRedirectUris = [], accessTokenTtl = 3600, backchannelLogoutUri } = {}) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `key-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
    const client = {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    };
    if (backchannelLogoutUri) {
      client.backchannel_logout_uri = backchannelLogoutUri;
      client.backchannel_logout_session_required = true;
    }
    const options = {
      clients: [client],
      jwks: { keys: [jwk] },
      cookies: { keys: [randomBytes(16).toString('hex')] },
      scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name', 'preferred_username'],
        groups: ['groups'],
      },
      async findAccount(ctx, id) {
        const known = USERS[id];
        return {
          accountId: id,
          async claims() {
            return {
              sub: id,
              preferred_username: id,
              name: known?.name ?? id,
              email: known?.email ?? `${id}@example.com`,
              email_verified: true,
              groups: known?.groups ?? [],
            };
          },
        };
      },
      features: {
        devInteractions: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          // The defaults' pages, without their web font; same button labels.
          async logoutSource(ctx, form) {
            ctx.body = page('Sign out', `<h1>Do you want to sign-out from ${escapeHtml(ctx.host)}?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
          },
          async postLogoutSuccessSource(ctx) {
            ctx.body = page('Sign-out Success', '<h1>Sign-out Success</h1><p>Your sign-out was successful.</p>');
          },
        },
        backchannelLogout: { enabled: true },
        revocation: { enabled: true },
      },
      ttl: {
        AccessToken: accessTokenTtl,
        IdToken: 3600,
        RefreshToken: 14 * 24 * 3600,
        Grant: 14 * 24 * 3600,
        Session: 14 * 24 * 3600,
        Interaction: 600,
        AuthorizationCode: 60,
      },
      rotateRefreshToken: true,
      // Outgoing requests (back-channel logout to Pulse) without oidc-provider's SSRF guard, which
      // refuses loopback addresses: this provider and Pulse both run on 127.0.0.1 here.
      fetch: (url, init) => {
        const { dispatcher, ...rest } = init;
        return globalThis.fetch(url, rest);
      },
      async renderError(ctx, out) {
        ctx.type = 'html';
        const details = Object.entries(out)
          .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`)
          .join('');
        ctx.body = page('oops! something went wrong', `<h1>oops! something went wrong</h1><dl>${details}</dl>`);
      },
    };
    const create = async () => new (await loadProvider())(issuer, options);
    provider = quiet ? await divertProviderNotices(record, create) : await create();
    refreshes = 0;
    refusedRefreshes = 0;
    grantIds.clear();
    const isRefresh = (ctx) => ctx?.oidc?.params?.grant_type === 'refresh_token';
    provider.on('grant.success', (ctx) => {
      if (isRefresh(ctx)) refreshes += 1;
    });
    provider.on('grant.error', (ctx) => {
      if (isRefresh(ctx)) refusedRefreshes += 1;
    });
    provider.on('grant.saved', (grant) => grantIds.add(grant.jti));
    provider.on('server_error', (ctx, err) => record(`oidc-provider server_error: ${err?.stack ?? err}`));
    provider.on('backchannel.success', (ctx, client, accountId, sid) =>
      record(`oidc-provider back-channel logout sent to ${client.clientId} for ${accountId} (sid ${sid})`),
    );
    for (const event of LOGGED_EVENTS) {
      provider.on(event, (ctx, err) =>
        record(
          `oidc-provider ${event}: ${err?.error ?? err?.name ?? 'error'}: ${err?.error_description ?? err?.message ?? ''}` +
            (err?.cause ? ` (cause: ${err.cause?.code ?? ''} ${err.cause?.message ?? err.cause})` : ''),
        ),
      );
    }
    server.removeAllListeners('request');
    server.on('request', provider.callback());
    return provider;
  }

  /**
   * Revokes every grant the provider has issued, as an administrator would at the provider: the
   * grants and their refresh tokens, access tokens and codes are gone, so the next refresh is
   * refused with invalid_grant. Returns how many grants there were.
   */
  async function revokeAllGrants() {
    if (!provider) throw new Error('The provider is not started.');
    const ids = [...grantIds];
    for (const id of ids) {
      await Promise.all([
        provider.RefreshToken.revokeByGrantId(id),
        provider.AccessToken.revokeByGrantId(id),
        provider.AuthorizationCode.revokeByGrantId(id),
      ]);
      const grant = await provider.Grant.find(id);
      await grant?.destroy();
      grantIds.delete(id);
      record(`oidc-provider grant ${id} revoked by the test`);
    }
    return ids.length;
  }

  async function close() {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  return {
    issuer,
    start,
    close,
    logs: () => lines.join('\n'),
    refreshCount: () => refreshes,
    refusedRefreshCount: () => refusedRefreshes,
    revokeAllGrants,
    get provider() { return provider; },
  };
}
