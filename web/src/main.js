// The dashboard's shell: hash routes, the header and navigation, light/dark theme, the login
// guard. Pages are loaded on demand (each its own chunk) and render into <main>.
import { Session, client } from "./api.js";
import { h, replace, errorPanel, loading } from "./dom.js";

const THEME_KEY = "oscar.theme";

// Route patterns → page modules. `:name` segments become ctx.params.
const ROUTES = [
  ["/login", () => import("./pages/login.js"), { public: true }],
  ["/services", () => import("./pages/services.js")],
  ["/services/new", () => import("./pages/service-edit.js")],
  ["/services/:name", () => import("./pages/service.js")],
  ["/services/:name/edit", () => import("./pages/service-edit.js")],
  ["/buckets", () => import("./pages/buckets.js")],
  ["/buckets/:bucket", () => import("./pages/buckets.js")],
  ["/bridges", () => import("./pages/bridges.js")],
  ["/bridges/new", () => import("./pages/bridge-edit.js")],
  ["/bridges/:name", () => import("./pages/bridge.js")],
  ["/bridges/:name/edit", () => import("./pages/bridge-edit.js")],
  ["/system", () => import("./pages/system.js")],
];
const NAVIGATION = [
  ["Services", "/services"],
  ["Buckets", "/buckets"],
  ["Bridges", "/bridges"],
  ["System", "/system"],
];

let cleanups = [];
let renderCount = 0;

function applyTheme(theme) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

/** The theme in effect: the stored choice, else the system's. */
function currentTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/services";
  const [path, search = ""] = raw.split("?");
  return { path: path.replace(/\/+$/, "") || "/services", query: new URLSearchParams(search) };
}

function match(path) {
  const segments = path.split("/").filter(Boolean);
  for (const [pattern, load, options = {}] of ROUTES) {
    const parts = pattern.split("/").filter(Boolean);
    if (parts.length !== segments.length) continue;
    const params = {};
    const same = parts.every((part, i) => {
      if (part.startsWith(":")) {
        params[part.slice(1)] = decodeURIComponent(segments[i]);
        return true;
      }
      return part === segments[i];
    });
    if (same) return { load, params, options, pattern };
  }
  return null;
}

/** Go to `hash` ("/services/x"); `replace` keeps the history entry. */
export function navigate(hash, { replace: replaceEntry = false } = {}) {
  const target = "#" + hash;
  if (location.hash === target) route();
  else if (replaceEntry) {
    history.replaceState(null, "", target);
    route();
  } else location.hash = target;
}

function header(session, activePath) {
  const themeButton = h(
    "button",
    { type: "button", class: "ghost", "aria-label": "Switch to dark theme" },
    "",
  );
  const labelTheme = () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    themeButton.textContent = next === "dark" ? "Dark" : "Light";
    themeButton.setAttribute("aria-label", `Switch to ${next} theme`);
  };
  themeButton.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    labelTheme();
  });
  labelTheme();
  const links = session
    ? NAVIGATION.map(([label, path]) =>
        h(
          "a",
          { href: "#" + path, "aria-current": activePath.startsWith(path) ? "page" : false },
          label,
        ),
      )
    : [];
  const account = session
    ? h(
        "div",
        { class: "account" },
        h(
          "span",
          { class: "who", title: session.oidc ? `${session.oidc.login} at ${session.endpoint}` : session.endpoint },
          session.username,
        ),
        h(
          "button",
          {
            type: "button",
            class: "ghost",
            onclick: async () => {
              if (session.oidc) (await import("./oidc.js")).logout(session);
              else Session.clear();
              navigate("/login");
            },
          },
          "Log out",
        ),
      )
    : null;
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/services", "aria-label": "oscar home" }, h("span", { class: "logo", "aria-hidden": "true" }), "oscar"),
    session && h("nav", { "aria-label": "Main" }, links),
    h("div", { class: "topbar-end" }, account, themeButton),
  );
}

async function route() {
  const count = ++renderCount;
  for (const cleanup of cleanups.splice(0)) cleanup();
  const { path, query } = parseHash();
  const session = Session.load();
  const found = match(path);
  const app = document.getElementById("app");
  if (!found) {
    navigate(session ? "/services" : "/login", { replace: true });
    return;
  }
  if (!found.options.public && !session) {
    const back = encodeURIComponent(location.hash.replace(/^#/, ""));
    navigate(`/login?next=${back}`, { replace: true });
    return;
  }
  const main = h("main", { id: "main", tabindex: "-1" }, loading());
  replace(app, header(found.options.public ? null : session, path), main);
  const ctx = {
    root: main,
    session,
    api: session ? client(session) : null,
    params: found.params,
    query,
    path,
    navigate,
    setTitle: (title) => {
      document.title = title ? `${title} · oscar` : "oscar";
    },
    onCleanup: (fn) => cleanups.push(fn),
    isCurrent: () => count === renderCount,
  };
  try {
    const page = await found.load();
    if (count !== renderCount) return;
    await page.default(ctx);
  } catch (error) {
    if (count !== renderCount) return;
    if (error.status === 401) {
      Session.clear();
      navigate("/login?expired=1", { replace: true });
      return;
    }
    replace(main, errorPanel(error, () => route()));
  }
  if (count === renderCount && document.activeElement === document.body) main.focus({ preventScroll: true });
}

// A 401 from an event handler (a button's call) ends the session as one from a page does.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason?.status !== 401) return;
  event.preventDefault();
  Session.clear();
  navigate("/login?expired=1", { replace: true });
});

applyTheme(localStorage.getItem(THEME_KEY));
window.addEventListener("hashchange", route);
// The identity provider sends the browser back to this page with `?code=&state=` (or `?error=`):
// finish that login (oidc.js) before the first route.
if (/[?&]state=/.test(location.search) && /[?&](code|error)=/.test(location.search)) {
  replace(document.getElementById("app"), h("main", { id: "main" }, loading("Logging in")));
  import("./oidc.js")
    .then(({ completeLogin }) => completeLogin())
    .catch(() => "/login")
    .then((next) => navigate(next, { replace: true }));
} else route();
