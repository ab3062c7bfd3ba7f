// A real OpenID Connect provider (panva/oidc-provider 8.x) for Backplane's
// integration tests. It listens on 127.0.0.1 only, keeps everything in memory,
// generates its signing key and cookie keys at start, and signs people in
// through a minimal form that an HTTP client can drive (no browser, no
// JavaScript). See README.md beside this file for the environment variables
// and the exact HTTP sequence of a sign-in.
//
// stdout carries exactly one line, `READY http://127.0.0.1:<port>`; everything
// else goes to stderr. The process exits on SIGTERM/SIGINT, when its stdin
// (if it is a pipe) closes, and when its parent process goes away.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { fstatSync } from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints its notices with console.info, i.e. to stdout: keep
// stdout for the READY line alone.
console.log = console.error; // eslint-disable-line no-console
console.info = console.error; // eslint-disable-line no-console
// aliasResource() below reads form bodies itself; oidc-provider then warns once
// that the body was already read. That is expected here: drop that one warning.
const warn = console.warn.bind(console); // eslint-disable-line no-console
console.warn = (...args) => { // eslint-disable-line no-console
  if (typeof args[0] === 'string' && args[0].includes('already parsed request body detected')) return;
  warn(...args);
};

const log = (...args) => console.error('[oidc-provider]', ...args); // eslint-disable-line no-console

function fail(message) {
  log(`error: ${message}`);
  process.exit(2);
}

let Provider;
let errors;
try {
  ({ default: Provider, errors } = await import('oidc-provider'));
} catch (err) {
  fail(`cannot load oidc-provider (${err.code || err.message}): run \`npm ci\` in ${new URL('.', import.meta.url).pathname}`);
}

// ---------------------------------------------------------------------------
// Configuration from the environment

const env = (name, fallback) => {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
};

const list = (value) => (value ? value.split(/[\s,]+/).filter(Boolean) : []);

function seconds(name, fallback) {
  const raw = env(name, String(fallback));
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) fail(`${name} must be a positive integer (seconds), got ${JSON.stringify(raw)}`);
  return value;
}

function isAbsoluteUri(value) {
  try {
    new URL(value); // eslint-disable-line no-new
    return true;
  } catch {
    return false;
  }
}

const PORT = Number(env('PORT', '0'));
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);

const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const REDIRECT_URIS = list(env('REDIRECT_URIS'));
const POST_LOGOUT_REDIRECT_URIS = list(env('POST_LOGOUT_REDIRECT_URIS'));
const APPLICATION_TYPE = env('APPLICATION_TYPE', 'native');
if (!['native', 'web'].includes(APPLICATION_TYPE)) fail('APPLICATION_TYPE must be "native" or "web"');

const SERVICE_CLIENT_ID = env('SERVICE_CLIENT_ID');
const SERVICE_CLIENT_SECRET = env('SERVICE_CLIENT_SECRET');
const SERVICE_ROLES = env('SERVICE_ROLES') === undefined ? undefined : list(env('SERVICE_ROLES'));

// The API (resource server): RESOURCE is the `aud` of its JWT access tokens.
// RFC 8707 wants a resource indicator to be an absolute URI; a bare name such
// as `backplane` is accepted as an alias of RESOURCE_INDICATOR (see below).
const RESOURCE = env('RESOURCE', 'backplane');
const RESOURCE_INDICATOR = env('RESOURCE_INDICATOR', isAbsoluteUri(RESOURCE) ? RESOURCE : `urn:${RESOURCE}`);
if (!isAbsoluteUri(RESOURCE_INDICATOR)) fail('RESOURCE_INDICATOR must be an absolute URI');
const PERMISSIONS = [
  'read:customers', 'read:billing', 'read:cost_data', 'read:internal_flags',
  'write:internal_flags', 'write:tickets', 'write:invoices', 'bulk:organizations',
  'read:audit_log',
];
const RESOURCE_SCOPES = list(env('RESOURCE_SCOPES', PERMISSIONS.map((p) => `backplane:${p}`).join(' ')));
const SERVICE_SCOPES = list(env('SERVICE_SCOPES', RESOURCE_SCOPES.join(' ')));

// A second factor: the login form takes a one-time code, and a sign-in with
// the right one is strong (`amr` ["pwd", "otp"], `acr` MFA_ACR); without it,
// `amr` is ["pwd"] and `acr` PASSWORD_ACR. Both go into ID tokens and JWT
// access tokens, with `auth_time`.
const OTP_CODE = env('OTP_CODE', '123456');
const PASSWORD_ACR = env('PASSWORD_ACR', 'urn:backplane:test:pwd');
const MFA_ACR = env('MFA_ACR', 'urn:backplane:test:mfa');

const ID_TOKEN_TTL = seconds('ID_TOKEN_TTL', 3600);
const ACCESS_TOKEN_TTL = seconds('ACCESS_TOKEN_TTL', 3600);

if (CLIENT_ID && (!CLIENT_SECRET || REDIRECT_URIS.length === 0)) fail('CLIENT_ID needs CLIENT_SECRET and REDIRECT_URIS');
if (SERVICE_CLIENT_ID && !SERVICE_CLIENT_SECRET) fail('SERVICE_CLIENT_ID needs SERVICE_CLIENT_SECRET');
if (!CLIENT_ID && !SERVICE_CLIENT_ID) log('warning: neither CLIENT_ID nor SERVICE_CLIENT_ID is set: no client can use this provider');

// ---------------------------------------------------------------------------
// Accounts (fixed)

const ACCOUNTS = new Map(Object.entries({
  alice: { name: 'Alice Support', email: 'alice@corp.example', roles: ['support'] },
  fiona: { name: 'Fiona Finance', email: 'fiona@corp.example', roles: ['finance'] },
  ada: { name: 'Ada Admin', email: 'ada@corp.example', roles: ['admin'] },
  nobody: { name: 'No Roles', email: 'nobody@corp.example', roles: [] },
}));

function accountClaims(id) {
  const account = ACCOUNTS.get(id);
  return {
    sub: id,
    name: account.name,
    email: account.email,
    email_verified: true,
    roles: [...account.roles],
  };
}

// ---------------------------------------------------------------------------
// Keys: generated at every start, never stored

function signingJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `test-${randomUUID()}`,
    alg: 'RS256',
    use: 'sig',
  };
}

// ---------------------------------------------------------------------------
// Small HTML and HTTP helpers

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const isForm = (req) => /^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] || '');

// ---------------------------------------------------------------------------
// Provider

function resourceServerInfo(indicator, client) {
  if (indicator !== RESOURCE_INDICATOR) throw new errors.InvalidTarget();
  const scopes = client.clientId === SERVICE_CLIENT_ID ? SERVICE_SCOPES : RESOURCE_SCOPES;
  return {
    scope: scopes.join(' '),
    audience: RESOURCE,
    accessTokenTTL: ACCESS_TOKEN_TTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

// The OpenID Connect scopes this provider knows (the rest are API scopes).
const OIDC_SCOPES = new Set(['openid', 'offline_access', 'email', 'profile', 'roles']);

function configuration() {
  const clients = [];
  if (CLIENT_ID) {
    clients.push({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      client_name: 'Backplane',
      // `native`: http redirect URIs on loopback are matched with any port
      // (RFC 8252 section 7.3), so REDIRECT_URIS may omit the relying party's
      // ephemeral port. `web` accepts http redirect URIs too, matched exactly.
      application_type: APPLICATION_TYPE,
      redirect_uris: REDIRECT_URIS,
      post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // client_secret_post is accepted too: oidc-provider treats the two
      // client secret methods as one.
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
      // `auth_time` in every ID token, asked for or not.
      require_auth_time: true,
    });
  }
  if (SERVICE_CLIENT_ID) {
    clients.push({
      client_id: SERVICE_CLIENT_ID,
      client_secret: SERVICE_CLIENT_SECRET,
      client_name: 'Backplane scripts',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    });
  }

  return {
    clients,
    jwks: { keys: [signingJwk()] },
    cookies: {
      names: {
        session: 'op_session',
        interaction: 'op_interaction',
        resume: 'op_interaction_resume',
      },
      keys: [randomBytes(32).toString('base64url')],
      // Lax, not None: browsers refuse SameSite=None without Secure, and over
      // plain http oidc-provider does not set Secure. Nothing here needs a
      // cross-site cookie.
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    claims: {
      // How the person signed in (`acr`, `amr`) goes with `openid`: an ID
      // token says it whatever else was asked for.
      acr: null,
      auth_time: null,
      sid: null,
      iss: null,
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'roles'],
      roles: ['roles'],
    },
    scopes: [...OIDC_SCOPES],
    acrValues: [PASSWORD_ACR, MFA_ACR],
    // Claims of the requested scopes go into the ID token, not only userinfo.
    conformIdTokenClaims: false,
    async findAccount(ctx, id) {
      if (!ACCOUNTS.has(id)) return undefined;
      return {
        accountId: id,
        async claims() { return accountClaims(id); },
      };
    },
    // JWT access tokens carry who the person is and their roles, as an
    // identity provider configured for an API would (Okta's groups claim,
    // Keycloak's audience and role mappers).
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
      if (token.accountId && ACCOUNTS.has(token.accountId)) {
        const { name, email, roles } = accountClaims(token.accountId);
        // How the person signed in, as Okta's and Keycloak's access tokens
        // can carry it (`amr`, `acr`, `auth_time`).
        const entities = ctx?.oidc?.entities || {};
        const source = entities.AuthorizationCode || entities.RefreshToken;
        const how = {};
        if (source?.amr) how.amr = source.amr;
        if (source?.acr) how.acr = source.acr;
        if (source?.authTime) how.auth_time = source.authTime;
        return { name, email, roles, ...how };
      }
      if (token.kind === 'ClientCredentials' && SERVICE_ROLES) return { roles: SERVICE_ROLES };
      return undefined;
    },
    pkce: {
      methods: ['S256'],
      required: () => true,
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
      introspectionSigningAlgValues: ['RS256'],
    },
    ttl: {
      IdToken: ID_TOKEN_TTL,
      AccessToken: ACCESS_TOKEN_TTL,
      ClientCredentials: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 86400,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Scripts get a token for the API without naming it (as with
        // Keycloak's audience mapper); browser sign-ins only when they ask
        // with `resource`.
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          if (ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials') return RESOURCE_INDICATOR;
          return undefined;
        },
        // A code granted for the API gives an API token at the token
        // endpoint without repeating `resource` there.
        async useGrantedResource() { return true; },
        async getResourceServerInfo(ctx, indicator, client) {
          return resourceServerInfo(indicator, client);
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Sign out', `${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<p id="error">${escapeHtml(out.error)}</p>
<p id="error_description">${escapeHtml(out.error_description || '')}</p>`);
    },
  };
}

// ---------------------------------------------------------------------------
// Interactions: one form that signs in and consents to everything requested

function loginForm(uid, interaction, error) {
  const accounts = [...ACCOUNTS.entries()]
    .map(([id, a]) => `<li><code>${escapeHtml(id)}</code> ${escapeHtml(a.name)} (${escapeHtml(a.roles.join(', ') || 'no roles')})</li>`)
    .join('\n');
  return page('Sign in', `${error ? `<p id="error" role="alert">${escapeHtml(error)}</p>\n` : ''}<p>Client <code>${escapeHtml(interaction.params.client_id)}</code> asks for <code>${escapeHtml(interaction.params.scope || '')}</code>.</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Account <input name="login" autofocus autocomplete="username"></label>
<label>One-time code (optional) <input name="otp" autocomplete="one-time-code" inputmode="numeric"></label>
<button type="submit">Sign in</button>
</form>
<p>The one-time code of every account is <code>${escapeHtml(OTP_CODE)}</code>; without it the sign-in is password-only.</p>
<p>Accounts:</p>
<ul>
${accounts}
</ul>`);
}

async function grantEverythingRequested(provider, interaction, accountId) {
  const { params } = interaction;
  let grant;
  if (interaction.grantId) grant = await provider.Grant.find(interaction.grantId);
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }

  const requested = list(params.scope);
  const oidcScopes = requested.filter((s) => OIDC_SCOPES.has(s));
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));

  if (params.claims) {
    const claims = JSON.parse(params.claims);
    const names = new Set([...Object.keys(claims.id_token || {}), ...Object.keys(claims.userinfo || {})]);
    if (names.size) grant.addOIDCClaims([...names]);
  }

  let resources = params.resource;
  if (resources === undefined) resources = [];
  if (!Array.isArray(resources)) resources = [resources];
  const client = await provider.Client.find(params.client_id);
  for (const indicator of resources) {
    const available = new Set(list(resourceServerInfo(indicator, client).scope));
    grant.addResourceScope(indicator, requested.filter((s) => available.has(s)).join(' '));
  }

  return grant.save();
}

async function interactionRoute(provider, req, res, uid, action) {
  let interaction;
  try {
    interaction = await provider.interactionDetails(req, res);
  } catch (err) {
    send(res, 400, page('Error', `<p id="error">${escapeHtml(err.message)}</p>`));
    return;
  }
  if (interaction.uid !== uid) {
    send(res, 400, page('Error', '<p id="error">interaction cookie does not match this interaction</p>'));
    return;
  }

  if (action === undefined && req.method === 'GET') {
    send(res, 200, loginForm(uid, interaction));
    return;
  }
  if (action === 'login' && req.method === 'POST') {
    const body = new URLSearchParams(await readBody(req));
    const login = (body.get('login') || '').trim();
    if (!ACCOUNTS.has(login)) {
      send(res, 400, loginForm(uid, interaction, `unknown account ${JSON.stringify(login)}`));
      return;
    }
    // Someone else is signed in at the provider (same cookie jar): end that
    // session here instead of oidc-provider's JavaScript auto-submit logout
    // page, so that an HTTP client without JavaScript can switch accounts.
    if (interaction.session?.accountId && interaction.session.accountId !== login) {
      const previous = await provider.Session.findByUid(interaction.session.uid);
      if (previous) await previous.destroy();
      delete interaction.session;
      delete interaction.grantId;
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
      log(`interaction ${uid}: ended the session of ${previous?.accountId}`);
    }
    const otp = (body.get('otp') || '').trim();
    if (otp && otp !== OTP_CODE) {
      send(res, 400, loginForm(uid, interaction, 'wrong one-time code'));
      return;
    }
    const strong = otp === OTP_CODE;
    const grantId = await grantEverythingRequested(provider, interaction, login);
    log(`interaction ${uid}: signed in as ${login}${strong ? ' with a one-time code' : ''}`);
    await provider.interactionFinished(req, res, {
      login: {
        accountId: login,
        amr: strong ? ['pwd', 'otp'] : ['pwd'],
        acr: strong ? MFA_ACR : PASSWORD_ACR,
        ts: Math.floor(Date.now() / 1000),
      },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    return;
  }
  res.setHeader('Allow', action === undefined ? 'GET' : 'POST');
  send(res, 405, page('Method not allowed', ''));
}

// ---------------------------------------------------------------------------
// `resource=<RESOURCE>` (a bare name, not an absolute URI) as an alias of the
// resource indicator, at the authorization and token endpoints.

const ALIAS_PATHS = new Set(['/auth', '/token', '/request']);

function rewriteResource(params) {
  const values = params.getAll('resource');
  if (!values.includes(RESOURCE)) return false;
  params.delete('resource');
  for (const value of values) params.append('resource', value === RESOURCE ? RESOURCE_INDICATOR : value);
  return true;
}

async function aliasResource(req) {
  if (RESOURCE === RESOURCE_INDICATOR) return;
  const url = new URL(req.url, 'http://127.0.0.1');
  if (!ALIAS_PATHS.has(url.pathname)) return;
  if (rewriteResource(url.searchParams)) req.url = `${url.pathname}?${url.searchParams}`;
  if (req.method === 'POST' && isForm(req)) {
    const params = new URLSearchParams(await readBody(req));
    rewriteResource(params);
    // The stream is consumed; oidc-provider then reads the body from req.body.
    req.body = params.toString();
  }
}

// ---------------------------------------------------------------------------
// Start

function exitOnParentGone() {
  const stat = (() => {
    try { return fstatSync(0); } catch { return undefined; }
  })();
  if (stat && (stat.isFIFO() || stat.isSocket())) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) shutdown('parent process gone');
  }, 500).unref();
}

let server;
function shutdown(reason) {
  log(`exiting: ${reason}`);
  if (server) server.close();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => shutdown('SIGHUP'));

exitOnParentGone();

server = http.createServer();
server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration());
  provider.on('server_error', (ctx, err) => log('server_error', ctx.method, ctx.path, err));
  for (const event of ['authorization.error', 'grant.error', 'end_session.error', 'userinfo.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => log(event, ctx.method, ctx.path, `${err.error || err.name}: ${err.error_description || err.message}`));
  }
  const handle = provider.callback();

  server.on('request', async (req, res) => {
    try {
      const path = new URL(req.url, issuer).pathname;
      const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?\/?$/.exec(path);
      if (match) {
        await interactionRoute(provider, req, res, match[1], match[2]);
        return;
      }
      await aliasResource(req);
      handle(req, res);
    } catch (err) {
      log('request failed', req.method, req.url, err);
      if (!res.headersSent) send(res, 500, page('Error', `<p id="error">${escapeHtml(err.message)}</p>`));
      else res.end();
    }
  });

  process.stdout.write(`READY ${issuer}\n`);
  log(`issuer ${issuer}; clients: ${[CLIENT_ID, SERVICE_CLIENT_ID].filter(Boolean).join(', ') || 'none'}; resource ${RESOURCE_INDICATOR} (aud ${RESOURCE})`);
});
server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${PORT}: ${err.message}`));
