// OIDC login for the dashboard: the authorization code flow with PKCE (S256) as a public
// client, and the refresh of the access token. Loaded on demand (the login page, the provider's
// redirect back, a token about to expire): the first load of a logged-in page never needs it.
//
// The server says which providers it trusts at GET /auth/config (public). The dashboard finds
// each provider's endpoints in its discovery document, sends the browser to the authorization
// endpoint with redirect_uri = the dashboard's own address (no fragment), and on the way back
// (`?code=&state=`, handled by main.js before any route) checks the state, exchanges the code
// with its PKCE verifier and keeps the tokens in this tab's sessionStorage, as the Basic login
// keeps its password.
import { ApiError, Session, call } from "./api.js";

const PENDING_KEY = "oscar.oidc.pending"; // one login under way in this tab
const NOTICE_KEY = "oscar.login.notice"; // what the login page must say after a redirect
const CALLBACK_PARAMS = ["code", "state", "session_state", "iss", "error", "error_description", "error_uri"];
const TIMEOUT_MS = 15000;

/** A failure to show on the login page, as a sentence. */
class LoginError extends Error {}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function random(size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The claims of a JWT (not verified: it came straight from the token endpoint, over TLS). */
function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

const trim = (url) => String(url || "").replace(/\/+$/, "");

/**
 * The address the provider sends the browser back to: this page without query, fragment or
 * trailing slash (`https://host/ui` whether the dashboard was opened at /ui or /ui/).
 */
export function redirectUri() {
  return location.origin + location.pathname.replace(/\/+$/, "");
}

/** A provider's name for a button: its host and path (`keycloak.example/realms/x`). */
export function issuerLabel(issuer) {
  try {
    const url = new URL(issuer);
    return url.host + url.pathname.replace(/\/+$/, "");
  } catch {
    return issuer;
  }
}

async function getJson(url, what) {
  let response;
  try {
    response = await fetch(url, { credentials: "omit", signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new LoginError(`Cannot reach ${what} (${url}): ${error.message}`);
  }
  if (!response.ok) throw new LoginError(`${what} answered ${response.status} for ${url}.`);
  try {
    return await response.json();
  } catch {
    throw new LoginError(`${what} did not answer JSON at ${url}.`);
  }
}

/**
 * The server's OIDC settings (`{enabled, issuers, client_id, scopes}`), or null when it offers
 * none (OIDC off, an older server without the route, or the server cannot be reached: the Basic
 * form still shows the real error when used).
 */
export async function serverConfig(endpoint) {
  try {
    const response = await fetch(trim(endpoint) + "/auth/config", { credentials: "omit", signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (!response.ok) return null;
    const oidc = (await response.json())?.oidc;
    return oidc?.enabled && oidc.issuers?.length && oidc.client_id ? oidc : null;
  } catch {
    return null;
  }
}

async function discover(issuer) {
  const document = await getJson(`${trim(issuer)}/.well-known/openid-configuration`, "the identity provider");
  if (trim(document.issuer) !== trim(issuer))
    throw new LoginError(`The identity provider at ${issuer} names itself ${document.issuer}: not logging in.`);
  if (!document.authorization_endpoint || !document.token_endpoint)
    throw new LoginError(`The identity provider at ${issuer} lists no authorization or token endpoint.`);
  return document;
}

/**
 * Start logging in at `issuer`: remember the PKCE verifier, state and nonce in this tab, and send
 * the browser to the provider. Throws a sentence when the provider cannot be used.
 */
export async function beginLogin({ endpoint, issuer, clientId, scopes, next }) {
  if (!crypto.subtle)
    throw new LoginError("Logging in with OIDC needs the dashboard on HTTPS (or localhost): this browser offers no crypto.subtle here.");
  const provider = await discover(issuer);
  const verifier = random(48);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const pending = {
    state: random(),
    nonce: random(),
    verifier,
    endpoint: trim(endpoint),
    issuer: trim(provider.issuer),
    clientId,
    redirectUri: redirectUri(),
    tokenEndpoint: provider.token_endpoint,
    endSessionEndpoint: provider.end_session_endpoint || "",
    next: next || "/services",
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: pending.redirectUri,
    scope: scopes || "openid",
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  const target = new URL(provider.authorization_endpoint);
  for (const [name, value] of query) target.searchParams.set(name, value);
  location.assign(target.href);
}

/** POST a form to the token endpoint; answers its JSON or throws an ApiError (401 when refused). */
async function tokenRequest(tokenEndpoint, form) {
  let response;
  try {
    response = await fetch(tokenEndpoint, {
      method: "POST",
      body: new URLSearchParams(form),
      credentials: "omit",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new ApiError(0, `cannot reach the identity provider's token endpoint (${tokenEndpoint}): ${error.message}`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) {
    const reason = [body.error, body.error_description].filter(Boolean).join(": ") || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status === 400 || response.status === 401 ? 401 : response.status || 0, `the identity provider refused: ${reason}`);
  }
  return body;
}

function applyTokens(oidc, tokens) {
  oidc.access_token = tokens.access_token;
  if (tokens.refresh_token) oidc.refresh_token = tokens.refresh_token;
  if (tokens.id_token) oidc.id_token = tokens.id_token;
  // Without expires_in, the access token's own exp; else assume five minutes.
  const seconds = Number(tokens.expires_in) || (claimsOf(tokens.access_token)?.exp || 0) - Date.now() / 1000 || 300;
  oidc.expires_at = Date.now() + seconds * 1000;
}

/**
 * Finish a login the provider sent back: check it, exchange the code, keep the session. Always
 * removes the answer from the address first. Answers the route to show; a failure is kept for
 * the login page to show and answers "/login".
 */
export async function completeLogin() {
  const query = new URLSearchParams(location.search);
  const kept = new URLSearchParams([...query].filter(([name]) => !CALLBACK_PARAMS.includes(name)));
  const rest = kept.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
  sessionStorage.removeItem(PENDING_KEY);
  try {
    if (!pending) throw new LoginError("The identity provider's answer matches no login started in this tab: log in again.");
    if (query.get("state") !== pending.state)
      throw new LoginError("The identity provider's answer does not match this login (wrong state): log in again.");
    if (query.has("iss") && trim(query.get("iss")) !== pending.issuer)
      throw new LoginError(`The answer came from another identity provider (${query.get("iss")}): log in again.`);
    const error = query.get("error");
    if (error) {
      const reason = (query.get("error_description") || error).replace(/\.+$/, "");
      throw new LoginError(
        error === "access_denied"
          ? `The identity provider denied access: ${reason}.`
          : `The identity provider could not log you in: ${reason}.`,
      );
    }
    const tokens = await tokenRequest(pending.tokenEndpoint, {
      grant_type: "authorization_code",
      code: query.get("code"),
      redirect_uri: pending.redirectUri,
      client_id: pending.clientId,
      code_verifier: pending.verifier,
    }).catch((failure) => {
      throw new LoginError(`Cannot log in: ${failure.detail}.`);
    });
    const claims = tokens.id_token ? claimsOf(tokens.id_token) : null;
    if (claims && claims.nonce !== pending.nonce)
      throw new LoginError("The identity token does not match this login (wrong nonce): log in again.");
    if (claims && trim(claims.iss) !== pending.issuer)
      throw new LoginError(`The identity token was issued by ${claims.iss}, not ${pending.issuer}: log in again.`);
    const identity = claims || claimsOf(tokens.access_token) || {};
    const oidc = {
      issuer: pending.issuer,
      client_id: pending.clientId,
      token_endpoint: pending.tokenEndpoint,
      end_session_endpoint: pending.endSessionEndpoint,
      redirect_uri: pending.redirectUri,
      subject: identity.sub || "",
      login: identity.preferred_username || identity.email || identity.sub || "",
    };
    applyTokens(oidc, tokens);
    const session = new Session(pending.endpoint, identity.name || oidc.login || "OIDC user", undefined, oidc);
    try {
      await call(session, "/system/info");
    } catch (failure) {
      throw new LoginError(
        failure.status === 401 || failure.status === 403
          ? `${pending.endpoint} does not accept this account: ${failure.detail}`
          : `Cannot log in: ${failure.detail || failure.message}`,
      );
    }
    session.save();
    return pending.next;
  } catch (failure) {
    sessionStorage.setItem(NOTICE_KEY, JSON.stringify({ error: failure.message || String(failure) }));
    return "/login";
  }
}

/**
 * A new access token from the refresh token (one request at a time per session). Throws an
 * ApiError 401 when the provider refuses (the session is over) or there is no refresh token.
 */
export function refreshTokens(session) {
  const oidc = session.oidc;
  if (!oidc?.refresh_token) return Promise.reject(new ApiError(401, "the OIDC session has expired"));
  session.refreshing ||= tokenRequest(oidc.token_endpoint, {
    grant_type: "refresh_token",
    refresh_token: oidc.refresh_token,
    client_id: oidc.client_id,
  })
    .then((tokens) => {
      applyTokens(oidc, tokens);
      // Only if this session is still the tab's (not logged out meanwhile).
      if (Session.load()?.oidc?.subject === oidc.subject) session.save();
    })
    .finally(() => {
      session.refreshing = null;
    });
  return session.refreshing;
}

/** What the login page must say (an error from a redirect, or a provider to log out of), once. */
export function takeNotice() {
  const notice = JSON.parse(sessionStorage.getItem(NOTICE_KEY) || "null");
  sessionStorage.removeItem(NOTICE_KEY);
  return notice;
}

/**
 * Log out: forget the session, and when the provider has an end_session_endpoint, leave the
 * login page a link to end the provider's session too.
 */
export function logout(session) {
  const oidc = session?.oidc;
  Session.clear();
  if (!oidc?.end_session_endpoint) return;
  const url = new URL(oidc.end_session_endpoint);
  url.searchParams.set("client_id", oidc.client_id);
  url.searchParams.set("post_logout_redirect_uri", oidc.redirect_uri);
  if (oidc.id_token) url.searchParams.set("id_token_hint", oidc.id_token);
  sessionStorage.setItem(NOTICE_KEY, JSON.stringify({ logout: url.href, provider: issuerLabel(oidc.issuer) }));
}
