// Test-only OpenID Connect provider for lakegate's sign-in tests (docs/testing.md).
//
// A real npm `oidc-provider` on 127.0.0.1, with one client (`lakegate`), a few fixed
// accounts, the built-in development login/consent forms, and test hooks that make
// the token endpoint hand out deliberately broken ID tokens for the `tamper-*` logins.
// Never expose this anywhere: any password is accepted.
//
//   PORT=4000 APP_URL=http://127.0.0.1:8091 node provider.mjs
//
// Environment:
//   PORT     (required) port on 127.0.0.1; the issuer is http://127.0.0.1:${PORT}
//   APP_URL  (required) lakegate's base URL; redirect URI ${APP_URL}/auth/callback,
//            post-logout redirect URI ${APP_URL}/
//   DEBUG    optional, e.g. DEBUG=oidc-provider:* for the provider's own debug log
//
// Prints exactly one line `listening on <issuer>` on stdout once it accepts requests.

import Provider from 'oidc-provider';
import {
  SignJWT, calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair,
} from 'jose';

function fail(message) {
  console.error(`provider.mjs: ${message}`);
  process.exit(2);
}

const PORT_RAW = process.env.PORT ?? '';
if (!/^[0-9]+$/.test(PORT_RAW) || Number(PORT_RAW) < 1 || Number(PORT_RAW) > 65535) {
  fail(`PORT must be set to a TCP port number (got '${PORT_RAW}')`);
}
const PORT = Number(PORT_RAW);
const ISSUER = `http://127.0.0.1:${PORT}`;

const APP_RAW = process.env.APP_URL ?? '';
let APP;
try {
  const u = new URL(APP_RAW);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  APP = APP_RAW.replace(/\/+$/, '');
} catch {
  fail(`APP_URL must be lakegate's base URL, e.g. http://127.0.0.1:8091 (got '${APP_RAW}')`);
}

// ---------------------------------------------------------------------------
// Accounts: the login name is the account id. Unknown names get no groups.
// ---------------------------------------------------------------------------
const ACCOUNTS = {
  alice: {
    sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Analyst', groups: ['analysts'],
  },
  bob: {
    sub: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob Owner', groups: ['data-owners'],
  },
  // The provider says the address is not verified.
  unverified: {
    sub: 'unverified', email: 'unverified@example.com', email_verified: false, groups: ['analysts'],
  },
  // The provider says nothing about verification.
  unclaimed: {
    sub: 'unclaimed', email: 'unclaimed@example.com', groups: ['analysts'],
  },
};

function accountClaims(id) {
  return ACCOUNTS[id] ?? {
    sub: id, email: `${id}@example.com`, email_verified: true, groups: [],
  };
}

// ---------------------------------------------------------------------------
// Signing key: generated per start-up, handed to the provider via `jwks`, and
// kept here so the tamper hooks can re-sign with the same key and `kid`.
// ---------------------------------------------------------------------------
const ALG = 'RS256';
const { privateKey } = await generateKeyPair(ALG, { modulusLength: 2048, extractable: true });
const privateJwk = await exportJWK(privateKey);
const KID = await calculateJwkThumbprint(privateJwk);
Object.assign(privateJwk, { kid: KID, alg: ALG, use: 'sig' });

// ---------------------------------------------------------------------------
// Adversarial ID tokens. Login name -> what is wrong with its ID token. The
// token is otherwise the one the provider issued (same claims, same key/kid).
// ---------------------------------------------------------------------------
const nowSeconds = () => Math.floor(Date.now() / 1000);

// Each hook returns the broken token and a note for the log.
async function resign(token, change) {
  const header = decodeProtectedHeader(token);
  const claims = { ...decodeJwt(token) };
  const note = change(claims);
  return { token: await new SignJWT(claims).setProtectedHeader(header).sign(privateKey), note };
}

const TAMPER = {
  // Issued for another client.
  'tamper-aud': (t) => resign(t, (c) => { c.aud = 'someone-else'; return 'aud = "someone-else"'; }),
  // Expired an hour ago; iat/auth_time move back by the same amount, so the
  // lifetime (exp - iat) and the order of the timestamps stay plausible.
  'tamper-exp': (t) => resign(t, (c) => {
    const shift = c.exp - (nowSeconds() - 3600);
    for (const k of ['exp', 'iat', 'auth_time']) {
      if (typeof c[k] === 'number') c[k] -= shift;
    }
    return `exp = ${c.exp} (an hour ago), iat = ${c.iat}`;
  }),
  // Not the nonce lakegate sent in the authorization request.
  'tamper-nonce': (t) => resign(t, (c) => { c.nonce = 'not-the-nonce'; return 'nonce = "not-the-nonce"'; }),
  // From another issuer.
  'tamper-iss': (t) => resign(t, (c) => { c.iss = 'http://127.0.0.1:1/'; return 'iss = "http://127.0.0.1:1/"'; }),
  // Signature does not verify: one character in the middle of the signature
  // segment changed; header and payload are the genuine ones. (Not the last
  // character: it carries base64url padding bits, and changing it might decode
  // to the same bytes.)
  'tamper-sig': async (t) => {
    const [h, p, s] = t.split('.');
    const i = Math.floor(s.length / 2);
    const flipped = s[i] === 'A' ? 'B' : 'A';
    return {
      token: `${h}.${p}.${s.slice(0, i)}${flipped}${s.slice(i + 1)}`,
      note: `signature character ${i} changed from '${s[i]}' to '${flipped}'`,
    };
  },
};

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------
const provider = new Provider(ISSUER, {
  clients: [{
    client_id: 'lakegate',
    client_secret: 'lakegate-secret',
    redirect_uris: [`${APP}/auth/callback`],
    post_logout_redirect_uris: [`${APP}/`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'],
  },
  conformIdTokenClaims: false, // email, name and groups go into the ID token too, not only /me
  async findAccount(_ctx, id) {
    return { accountId: id, async claims() { return accountClaims(id); } };
  },
  jwks: { keys: [privateJwk] },
  features: { devInteractions: { enabled: true } }, // login = account id, any password
  cookies: { keys: ['lakegate-test-only-cookie-key'] },
});

// Test-only hook: `POST /__test/groups/<account>` with a JSON array sets that account's groups,
// as an administrator of the organisation would; ID tokens and /me say so from then on.
provider.use(async (ctx, next) => {
  const prefix = '/__test/groups/';
  if (ctx.method !== 'POST' || !ctx.path.startsWith(prefix)) {
    await next();
    return;
  }
  const id = decodeURIComponent(ctx.path.slice(prefix.length));
  let raw = '';
  for await (const chunk of ctx.req) raw += chunk;
  let groups;
  try {
    groups = JSON.parse(raw);
  } catch {
    groups = undefined;
  }
  if (!id || !Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
    ctx.status = 400;
    ctx.body = 'POST a JSON array of group names to /__test/groups/<account>';
    return;
  }
  ACCOUNTS[id] = { ...accountClaims(id), groups };
  console.error(`provider.mjs: ${id}: groups set to ${JSON.stringify(groups)}`);
  ctx.status = 204;
});

// Wraps the provider's routes (provider.use inserts before them).
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method !== 'POST' || ctx.path !== '/token') return;
  const body = ctx.body;
  if (!body || typeof body !== 'object' || typeof body.id_token !== 'string') return;
  if (ctx.oidc?.params?.grant_type !== 'authorization_code') return;
  const accountId = ctx.oidc?.entities?.AuthorizationCode?.accountId ?? decodeJwt(body.id_token).sub;
  const tamper = Object.hasOwn(TAMPER, accountId) ? TAMPER[accountId] : undefined;
  if (!tamper) return;
  const { token, note } = await tamper(body.id_token);
  body.id_token = token;
  console.error(`provider.mjs: ${accountId}: deliberately broken ID token: ${note}`);
});

provider.on('server_error', (_ctx, err) => {
  console.error('provider.mjs: server_error:', err);
});

// ---------------------------------------------------------------------------
// Listen on loopback only; stop cleanly on SIGTERM/SIGINT.
// ---------------------------------------------------------------------------
const server = provider.listen(PORT, '127.0.0.1', () => {
  console.log(`listening on ${ISSUER}`);
});
server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${PORT}: ${err.message}`));

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`provider.mjs: ${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
  // Keep-alive connections in flight get a moment, then go.
  setTimeout(() => {
    server.closeAllConnections?.();
    process.exit(0);
  }, 1000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
