// A real OpenID provider (npm oidc-provider, OpenID Certified) for end-to-end tests and for trying
// SSO locally. Two phases because of ports: bind first (the issuer URL needs the port), start Pulse
// with that issuer, then start the provider with Pulse's callback URL as the registered redirect URI.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

/** The documented users. Any other login name works too and becomes `sub`, with no groups. */
export const USERS = {
  alice: { email: 'alice@example.com', name: 'Alice Admin', groups: ['pulse-admins', 'pulse-users'] },
  bob: { email: 'bob@example.com', name: 'Bob Viewer', groups: ['pulse-users'] },
  mallory: { email: 'mallory@elsewhere.org', name: 'Mallory Outsider', groups: ['contractors'] },
};

export const CLIENT_ID = 'pulse';
export const CLIENT_SECRET = 'pulse-dev-secret-change-me';

/** Binds a listener (port 0 = any free port) and returns { issuer, start, close }. */
export async function bindIdp({ port = 0, host = '127.0.0.1' } = {}) {
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
    provider = new Provider(issuer, {
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
        rpInitiatedLogout: { enabled: true },
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
    });
    provider.on('server_error', (ctx, err) => console.error('oidc-provider error:', err));
    server.removeAllListeners('request');
    server.on('request', provider.callback());
    return provider;
  }

  async function close() {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  return { issuer, start, close, get provider() { return provider; } };
}
