// The REST API, as this client uses it: JSON in and out, the login kept in localStorage, an
// expired access token refreshed once and the request repeated.

const BASE = "/api/v1";
const STORED = "chat.login";

/** An error answer of the API: `status`, and the server's `code` and `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  /** `onLoggedOut` runs when the login ended elsewhere (refresh refused). */
  constructor(onLoggedOut) {
    this.onLoggedOut = onLoggedOut;
    this.login = JSON.parse(localStorage.getItem(STORED) || "null");
    this.refreshing = null;
  }

  get loggedIn() {
    return this.login !== null;
  }

  get userId() {
    return this.login?.userId ?? null;
  }

  async register(username, password) {
    await this.request("POST", "/auth/register", { username, password }, { auth: false });
  }

  async logIn(username, password) {
    const tokens = await this.request("POST", "/auth/login", { username, password }, { auth: false });
    this.keep({ ...tokens, userId: tokens.user.id });
    return tokens.user;
  }

  async logOut() {
    try {
      await this.request("POST", "/auth/logout");
    } finally {
      this.keep(null);
    }
  }

  keep(login) {
    this.login = login && {
      access: login.access_token ?? login.access,
      refresh: login.refresh_token ?? login.refresh,
      userId: login.userId,
    };
    if (this.login) localStorage.setItem(STORED, JSON.stringify(this.login));
    else localStorage.removeItem(STORED);
  }

  get(path, query) {
    return this.request("GET", path + queryString(query));
  }

  post(path, body) {
    return this.request("POST", path, body ?? {});
  }

  /** One request; a 401 on an authenticated one refreshes the login and tries once more. */
  async request(method, path, body, { auth = true } = {}) {
    const first = await this.send(method, path, body, auth);
    if (first.status !== 401 || !auth || !this.login) return answer(first);
    await this.refresh();
    return answer(await this.send(method, path, body, auth));
  }

  send(method, path, body, auth) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth && this.login) headers.authorization = `Bearer ${this.login.access}`;
    const init = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(BASE + path, init);
  }

  /** Trades the refresh token for a new pair; concurrent callers share one exchange. */
  refresh() {
    this.refreshing ??= (async () => {
      try {
        const refresh_token = this.login?.refresh;
        const response = await this.send("POST", "/auth/refresh", { refresh_token }, false);
        if (response.status === 401 || response.status === 403) {
          this.keep(null);
          this.onLoggedOut();
          throw new ApiError(401, "unauthenticated", "your login has ended");
        }
        const tokens = await answer(response);
        this.keep({ ...tokens, userId: this.login?.userId });
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}

async function answer(response) {
  if (response.status === 204) return null;
  const body = await response.json().catch(() => null);
  if (response.ok) return body;
  const error = body?.error ?? {};
  throw new ApiError(response.status, error.code ?? "http", error.message ?? response.statusText);
}

function queryString(query) {
  if (!query) return "";
  const defined = Object.entries(query).filter(([, value]) => value !== undefined && value !== null);
  return defined.length ? "?" + new URLSearchParams(defined) : "";
}

/** Every page of a `{items, next_cursor}` list, up to `max` items. */
export async function allPages(api, path, query = {}, max = 1000) {
  const items = [];
  let cursor;
  do {
    const page = await api.get(path, { ...query, cursor, limit: 100 });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}
