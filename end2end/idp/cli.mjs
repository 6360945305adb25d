// `scripts/dev-idp`: a local OpenID provider to try Pulse's single sign-on in a minute.
import { bindIdp, USERS, CLIENT_ID, CLIENT_SECRET } from './idp.mjs';

const port = Number(process.env.IDP_PORT ?? 9000);
const pulseUrl = (process.env.PULSE_URL ?? 'http://127.0.0.1:7655').replace(/\/$/, '');
const idp = await bindIdp({ port });
await idp.start({
  redirectUris: [`${pulseUrl}/api/oidc/callback`],
  postLogoutRedirectUris: [`${pulseUrl}/login?logged_out=1`, `${pulseUrl}/login`],
  backchannelLogoutUri: `${pulseUrl}/api/oidc/backchannel-logout`,
});
const users = Object.entries(USERS).map(([name, u]) => `    ${name.padEnd(8)} groups: ${u.groups.join(', ')}`).join('\n');
console.log(`Development OpenID provider running at ${idp.issuer}

Start Pulse with:
  OIDC_ENABLED=true OIDC_ISSUER_URL=${idp.issuer} OIDC_CLIENT_ID=${CLIENT_ID} \\
  OIDC_CLIENT_SECRET=${CLIENT_SECRET} OIDC_SCOPES="openid profile email groups offline_access" scripts/run

Sign in at the provider with any password and one of these login names (any other name works
too and has no groups):
${users}
Press Ctrl+C to stop.`);
