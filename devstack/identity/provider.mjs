// The development OpenID Connect provider: node-oidc-provider (OpenID Certified), configured, nothing more.
// `node provider.mjs <config.json>`; devstack/identity.py writes the file (issuer, port, keys, clients, the
// gateway as the one resource server, the accounts with their trial groups) and starts this process.
//
// Sign-in is the library's development interaction: any password. Access tokens are JWTs for the gateway
// (RFC 9068, audience = the resource indicator) carrying the account's groups, name and `auth_time`, so the
// gateway verifies them exactly as it would a hospital's Keycloak or Entra ID tokens.
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const resources = new Map(Object.entries(config.resources));

const provider = new Provider(config.issuer, {
  jwks: config.jwks,
  cookies: { keys: config.cookie_keys },
  clients: config.clients,
  claims: { openid: ['sub'], profile: ['name'], groups: ['groups'] },
  findAccount(ctx, id) {
    const account = config.accounts[id] ?? { name: id, groups: [] };
    return { accountId: id, claims: () => ({ sub: id, name: account.name, groups: account.groups }) };
  },
  features: {
    devInteractions: { enabled: true },
    // Sign-out from the trial's apps ends this provider's session too. The app asked for it (with the ID token as
    // its hint): confirmed at once, and the browser goes back to the app.
    rpInitiatedLogout: {
      enabled: true,
      logoutSource(ctx, form) {
        const confirmed = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signing out</title></head><body>
${confirmed}<noscript><button type="submit" form="op.logoutForm">Sign out</button></noscript>
<script>document.getElementById('op.logoutForm').submit()</script></body></html>`;
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => (oneOf ? oneOf[0] : config.default_resource),
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        const resource = resources.get(indicator);
        if (!resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return {
          scope: resource.scope,
          audience: indicator,
          accessTokenTTL: config.access_token_ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // The gateway's identity: who (sub), in which trial roles (groups), the printed name, and when they signed in.
  async extraTokenClaims(ctx, token) {
    if (!token.accountId) return undefined;
    const account = config.accounts[token.accountId] ?? { name: token.accountId, groups: [] };
    const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
    return { groups: account.groups, name: account.name, auth_time: source?.authTime };
  },
  // The trial's own apps are first-party: no consent screen, the grant covers what they ask for.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile groups');
    for (const [indicator, resource] of resources) grant.addResourceScope(indicator, resource.scope);
    await grant.save();
    return grant;
  },
  ttl: { AccessToken: config.access_token_ttl, IdToken: 3600, Interaction: 600, Session: 8 * 3600, Grant: 8 * 3600 },
});
provider.proxy = false;

provider.listen(config.port, '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'identity provider listening', issuer: config.issuer }));
});
