// Loopback OpenID Connect provider for Sluice integration tests.
//
// A real `oidc-provider` (panva/node-oidc-provider) instance with one
// confidential client, PKCE (S256) required, a fixed set of test accounts and
// the library's built-in development interactions (login form + consent
// screen). See README.md for the env vars and the exact HTTP sequence.
//
// stdout carries exactly one line: {"issuer":"http://127.0.0.1:PORT"} once the
// server listens. Everything else goes to stderr.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its NOTICE lines with console.info (stdout) — keep
// stdout reserved for the single readiness line.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function env(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

function fail(message) {
  process.stderr.write(`oidc test provider: ${message}\n`);
  process.exit(2);
}

const port = Number.parseInt(env('PORT', '0'), 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid PORT ${process.env.PORT}`);

const clientId = env('CLIENT_ID', 'sluice');
const clientSecret = env('CLIENT_SECRET', 'sluice-test-secret');
const redirectUris = env('REDIRECT_URIS', 'http://127.0.0.1:9/callback')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (redirectUris.length === 0) fail('REDIRECT_URIS is empty');
const autoConsent = env('AUTO_CONSENT', '1') !== '0';

// Test accounts. The login name is what is typed into the login form; `sub`
// is the stable subject identifier that ends up in tokens (and is the
// oidc-provider accountId).
const DEFAULT_ACCOUNTS = [
  { login: 'alice', sub: 'sub-alice', email: 'alice@example.test', email_verified: true, name: 'Alice Example' },
  { login: 'bob', sub: 'sub-bob', email: 'bob@example.test', email_verified: true, name: 'Bob Example' },
  { login: 'mallory', sub: 'sub-mallory', email: 'mallory@example.test', email_verified: false, name: 'Mallory Example' },
];

let accounts = DEFAULT_ACCOUNTS;
if (process.env.ACCOUNTS_JSON) {
  try {
    accounts = JSON.parse(process.env.ACCOUNTS_JSON);
    if (!Array.isArray(accounts)) throw new Error('not an array');
    for (const a of accounts) {
      if (typeof a.login !== 'string' || !a.login) throw new Error('every account needs a login');
      a.sub ??= `sub-${a.login}`;
    }
  } catch (err) {
    fail(`invalid ACCOUNTS_JSON: ${err.message}`);
  }
}
const accountsByLogin = new Map(accounts.map((a) => [a.login, a]));
const accountsBySub = new Map(accounts.map((a) => [a.sub, a]));

async function findAccount(_ctx, id) {
  const account = accountsBySub.get(id);
  if (!account) return undefined;
  return {
    accountId: account.sub,
    async claims() {
      const claims = { sub: account.sub };
      if (account.email !== undefined) claims.email = account.email;
      if (account.email_verified !== undefined) claims.email_verified = account.email_verified;
      if (account.name !== undefined) claims.name = account.name;
      return claims;
    },
  };
}

// Fresh signing key and cookie keys per run (avoids the development keystore).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end('starting');
};
const server = http.createServer((req, res) => handler(req, res));

server.on('error', (err) => fail(`listen failed: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;

  const configuration = {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        // client_secret_post is accepted as well: oidc-provider lets a
        // client registered with either secret method use both.
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    findAccount,
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    scopes: ['openid', 'email', 'profile'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // Put the scope claims (email, email_verified, name) into the ID token too,
    // not only into the userinfo response (oidc-provider's spec-strict default).
    conformIdTokenClaims: false,
    pkce: { required: () => true }, // oidc-provider 9 only supports S256
    jwks: { keys: [signingJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (!autoConsent) return grant;
      // Automatic consent: grant whatever OIDC scopes/claims were requested.
      grant ??= new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.account.accountId,
      });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      const claims = [...ctx.oidc.requestParamClaims];
      if (claims.length) grant.addOIDCClaims(claims);
      await grant.save();
      return grant;
    },
  };

  const provider = new Provider(issuer, configuration);

  // The development login form puts whatever was typed into `login` as the
  // accountId. Map the login name to the account's `sub` and reject unknown
  // logins (HTTP 400 error page; the interaction stays usable for a retry).
  const interactionResult = provider.interactionResult.bind(provider);
  provider.interactionResult = async (req, res, result, options) => {
    if (result?.login) {
      const account = accountsByLogin.get(String(result.login.accountId ?? '').trim());
      if (!account) {
        process.stderr.write(`interaction: unknown login ${JSON.stringify(result.login.accountId)} rejected\n`);
        throw new errors.InvalidRequest(`unknown login ${JSON.stringify(result.login.accountId)}`);
      }
      result = { ...result, login: { ...result.login, accountId: account.sub } };
    }
    return interactionResult(req, res, result, options);
  };

  provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));
  for (const event of ['authorization.error', 'grant.error', 'introspection.error', 'revocation.error', 'userinfo.error']) {
    provider.on(event, (ctx, err) => {
      const description = err.error_description ? ` (${err.error_description})` : '';
      const detail = err.error_detail ? ` [${err.error_detail}]` : '';
      process.stderr.write(`${event}: ${err.name}: ${err.message}${description}${detail}\n`);
    });
  }

  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
  process.stderr.write(`oidc test provider: issuer ${issuer}, client ${clientId}, redirect_uris ${redirectUris.join(' ')}, auto consent ${autoConsent ? 'on' : 'off'}\n`);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`oidc test provider: ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
