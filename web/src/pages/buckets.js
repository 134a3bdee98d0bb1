// Buckets. `#/buckets` lists the default store's buckets: create one, change who may read it,
// delete an empty one. `#/buckets/<b>?prefix=in/` browses one bucket as folders and files.
// S3 keys are flat, so "folders" are the distinct next segment of the keys under the prefix; the
// API lists every level at once, so one full listing serves any depth. Object bodies never pass
// through the API: uploads, downloads and deletes go straight to the store on presigned URLs.
import { sendToPresigned } from "../api.js";
import {
  badge, confirmDialog, copyText, dataTable, downloadBlob, field, formatBytes, formatTime, h, notify, replace,
  setFieldError,
} from "../dom.js";

const VISIBILITIES = ["private", "restricted", "public"];
const PARALLEL_UPLOADS = 3;
const enc = encodeURIComponent;

const folderHref = (bucket, prefix) => `#/buckets/${enc(bucket)}${prefix ? `?prefix=${enc(prefix)}` : ""}`;
const baseName = (key) => key.replace(/\/+$/, "").split("/").pop();
const userList = (text) => text.split(",").map((user) => user.trim()).filter(Boolean);
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
const messageOf = (error) => error.detail || error.message || String(error);

function visibilitySelect(current, props = {}) {
  return h("select", props, VISIBILITIES.map((value) => h("option", { value, selected: value === current }, value)));
}

/** Run `task` with `button` disabled and marked busy. */
async function busy(button, task) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await task();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export default async function render(ctx) {
  return ctx.params.bucket === undefined ? bucketList(ctx) : browse(ctx, ctx.params.bucket);
}

// ---------------------------------------------------------------- the list of buckets

async function bucketList(ctx) {
  ctx.setTitle("Buckets");
  const body = h("tbody");
  const count = h("p", { class: "muted", role: "status" });

  const load = async () => {
    const buckets = await ctx.api.buckets();
    if (!ctx.isCurrent()) return;
    buckets.sort((a, b) => a.bucket_name.localeCompare(b.bucket_name));
    replace(body, buckets.length ? buckets.map(bucketRow) : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No bucket yet. Create one above.")));
    count.textContent = plural(buckets.length, "bucket");
  };

  const bucketRow = (bucket) => {
    const name = bucket.bucket_name;
    const select = visibilitySelect(bucket.visibility, { "aria-label": `Visibility of ${name}` });
    const users = h("input", {
      type: "text", value: (bucket.allowed_users || []).join(", "), placeholder: "user1, user2",
      "aria-label": `Allowed users of ${name} (comma separated)`, autocomplete: "off",
    });
    const showUsers = () => (users.hidden = select.value !== "restricted");
    select.addEventListener("change", showUsers);
    showUsers();
    const save = h("button", { type: "button", class: "small", "aria-label": `Save visibility of ${name}` }, "Save");
    save.addEventListener("click", () =>
      busy(save, async () => {
        const visibility = select.value;
        try {
          await ctx.api.updateBucket({ bucket_name: name, visibility, allowed_users: visibility === "restricted" ? userList(users.value) : [] });
          notify(`${name} is now ${visibility}.`, "success");
          await load();
        } catch (error) {
          if (error.status === 401) throw error;
          notify(messageOf(error), "error");
        }
      }),
    );
    const remove = h("button", { type: "button", class: "small danger", "aria-label": `Delete bucket ${name}` }, "Delete");
    remove.addEventListener("click", async () => {
      if (!(await confirmDialog(`Delete the bucket ${name}? Only an empty bucket can be deleted.`))) return;
      await busy(remove, async () => {
        try {
          await ctx.api.deleteBucket(name);
          notify(`Bucket ${name} deleted.`, "success");
          await load();
          count.focus();
        } catch (error) {
          if (error.status === 401) throw error;
          notify(messageOf(error), "error");
        }
      });
    });
    const allowed = bucket.visibility === "restricted" && bucket.allowed_users?.length
      ? h("div", { class: "hint" }, `Allowed: ${bucket.allowed_users.join(", ")}`) : null;
    return h(
      "tr",
      { dataset: { bucket: name } },
      h("th", { scope: "row" }, h("a", { href: folderHref(name, ""), class: "mono" }, name)),
      h("td", {}, badge(bucket.visibility), allowed),
      h("td", { class: "hide-narrow" }, bucket.metadata?.owner_name || bucket.owner || "–"),
      h("td", {}, bucket.metadata?.from_service
        ? h("a", { href: `#/services/${enc(bucket.metadata.from_service)}` }, bucket.metadata.from_service) : "–"),
      h("td", {}, h("div", { class: "bucket-actions" }, h("div", { class: "bucket-access" }, select, users, save), remove)),
    );
  };

  // Create form: the API's 400 answers name their field (`body.bucket_name`, …).
  const nameInput = h("input", { type: "text", required: true, autocomplete: "off", spellcheck: "false" });
  const visibility = visibilitySelect("private");
  const usersInput = h("input", { type: "text", autocomplete: "off", placeholder: "user1, user2" });
  const fields = {
    bucket_name: field({ label: "Name", input: nameInput, name: "bucket_name", hint: "3 to 63 lowercase letters, digits, dots and hyphens." }),
    visibility: field({ label: "Visibility", input: visibility, name: "visibility" }),
    allowed_users: field({ label: "Allowed users", input: usersInput, name: "allowed_users", hint: "Comma separated; they may read and write the bucket." }),
  };
  const showAllowed = () => (fields.allowed_users.hidden = visibility.value !== "restricted");
  visibility.addEventListener("change", showAllowed);
  showAllowed();
  const submit = h("button", { type: "submit", class: "primary" }, "Create bucket");
  const form = h("form", { class: "bucket-create", novalidate: true }, h("div", { class: "form-grid" }, Object.values(fields)), h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const wrapper of Object.values(fields)) setFieldError(wrapper, null);
    const name = nameInput.value.trim();
    if (!name) {
      setFieldError(fields.bucket_name, "Give the bucket a name.");
      nameInput.focus();
      return;
    }
    busy(submit, async () => {
      const spec = { bucket_name: name, visibility: visibility.value, allowed_users: visibility.value === "restricted" ? userList(usersInput.value) : [] };
      try {
        await ctx.api.createBucket(spec);
      } catch (error) {
        if (error.status === 401) throw error;
        if (error.status !== 400 && error.status !== 409) {
          notify(messageOf(error), "error");
          return;
        }
        const found = (error.errors || []).map((e) => [Object.keys(fields).find((key) => e.field.includes(key)) || "bucket_name", e.message]);
        if (!found.length) found.push(["bucket_name", messageOf(error)]);
        for (const [key, message] of found) setFieldError(fields[key], message);
        fields[found[0][0]].querySelector("input, select").focus();
        return;
      }
      notify(`Bucket ${name} created.`, "success");
      form.reset();
      showAllowed();
      await load();
    });
  });

  const refresh = h("button", { type: "button" }, "Refresh");
  refresh.addEventListener("click", () => busy(refresh, load));
  count.tabIndex = -1;
  await load();
  if (!ctx.isCurrent()) return;
  replace(
    ctx.root,
    h("div", { class: "page-head" }, h("h1", {}, "Buckets"), h("div", { class: "actions" }, refresh)),
    h("section", { class: "panel", "aria-labelledby": "bucket-create-title" }, h("h2", { id: "bucket-create-title" }, "Create bucket"), form),
    h(
      "section",
      { class: "panel bucket-list", "aria-label": "Buckets" },
      count,
      dataTable({ caption: "Buckets", columns: ["Name", "Visibility", ["Owner", "hide-narrow"], "Service", "Actions"], body }),
    ),
  );
}

// ---------------------------------------------------------------- one bucket's files

/** The whole listing (the API pages it, `limit` objects at a time). */
async function listAll(api, bucket) {
  let answer = await api.bucket(bucket);
  const objects = [...(answer.objects || [])];
  for (let round = 0; answer.is_truncated && answer.next_page && round < 10000; round++) {
    answer = await api.bucket(bucket, answer.next_page);
    objects.push(...(answer.objects || []));
  }
  return { info: answer, objects };
}

/** The folders (next key segment, with their object count, size, newest time) and files at `prefix`. */
function level(objects, prefix) {
  const folders = new Map();
  const files = [];
  for (const object of objects) {
    const key = object.object_name;
    if (!key.startsWith(prefix) || key === prefix) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) {
      files.push(object);
      continue;
    }
    const path = prefix + rest.slice(0, slash + 1);
    const folder = folders.get(path) || { path, count: 0, size: 0, modified: "" };
    folder.count += 1;
    folder.size += object.size_bytes || 0;
    if ((object.last_modified || "") > folder.modified) folder.modified = object.last_modified;
    folders.set(path, folder);
  }
  return { folders: [...folders.values()], files };
}

async function browse(ctx, bucket) {
  let prefix = ctx.query.get("prefix") || "";
  if (prefix && !prefix.endsWith("/")) prefix += "/";
  ctx.setTitle(prefix ? `${bucket}/${prefix}` : bucket);
  const body = h("tbody");
  const count = h("p", { class: "muted", role: "status", tabindex: "-1" });
  const visibility = h("span");
  let uploading = 0;

  const load = async () => {
    const { info, objects } = await listAll(ctx.api, bucket);
    if (!ctx.isCurrent()) return;
    replace(visibility, badge(info.visibility));
    const { folders, files } = level(objects, prefix);
    const rows = [...folders.map(folderRow), ...files.map(fileRow)];
    replace(body, rows.length ? rows : h("tr", {}, h("td", { colspan: 4, class: "empty" }, "This folder is empty. Drop files here to upload them.")));
    count.textContent = `${plural(folders.length, "folder")}, ${plural(files.length, "file")}`;
  };
  const reload = async () => {
    try {
      await load();
    } catch (error) {
      if (error.status === 401) throw error;
      notify(messageOf(error), "error");
    }
  };

  const folderRow = (folder) =>
    h(
      "tr",
      { dataset: { prefix: folder.path } },
      h("th", { scope: "row" }, h("a", { href: folderHref(bucket, folder.path), class: "mono" }, `${baseName(folder.path)}/`), " ", h("span", { class: "muted" }, "folder")),
      h("td", { class: "num" }, formatBytes(folder.size), h("div", { class: "hint" }, plural(folder.count, "object"))),
      h("td", { class: "hide-narrow" }, folder.modified ? h("time", { datetime: folder.modified }, formatTime(folder.modified)) : "–"),
      h("td", {}),
    );

  const fileRow = (object) => {
    const key = object.object_name;
    const name = baseName(key);
    const button = (text, label, onclick, cls = "small") => {
      const element = h("button", { type: "button", class: cls, "aria-label": `${label} ${key}` }, text);
      element.addEventListener("click", () => busy(element, () => onclick(element)).catch((error) => {
        if (error.status === 401) throw error;
        notify(messageOf(error), "error");
      }));
      return element;
    };
    const download = async () => {
      const signed = await ctx.api.presign(bucket, key, "download");
      const response = await fetch(signed.url, { method: signed.method || "GET", headers: signed.headers || {} });
      if (!response.ok) throw new Error(`the store refused the download of ${key} (${response.status})`);
      downloadBlob(await response.blob(), name);
    };
    const copyLink = async () => {
      const signed = await ctx.api.presign(bucket, key, "download");
      await copyText(signed.url);
      notify(`Link copied, valid until ${formatTime(signed.expires_at)}`, "success");
    };
    const remove = async () => {
      if (!(await confirmDialog(`Delete ${key} from ${bucket}? This cannot be undone.`))) return;
      const signed = await ctx.api.presign(bucket, key, "delete");
      const response = await fetch(signed.url, { method: signed.method, headers: signed.headers || {} });
      if (!response.ok) throw new Error(`the store refused to delete ${key} (${response.status})`);
      notify(`Deleted ${key}.`, "success");
      await reload();
      if (ctx.isCurrent()) count.focus();
    };
    return h(
      "tr",
      { dataset: { key } },
      h("th", { scope: "row", class: "object-name" }, h("span", { class: "mono", title: key }, name)),
      h("td", { class: "num" }, formatBytes(object.size_bytes)),
      h("td", { class: "hide-narrow" }, object.last_modified ? h("time", { datetime: object.last_modified }, formatTime(object.last_modified)) : "–"),
      h(
        "td",
        {},
        h("div", { class: "actions" },
          button("Download", "Download", download),
          button("Copy link", "Copy link to", copyLink),
          button("Delete", "Delete", remove, "small danger")),
      ),
    );
  };

  // Uploads: one progress row each, a few at a time, then one refresh of the listing.
  const progressList = h("div", { class: "uploads", "aria-label": "Uploads", role: "group" });
  const uploadOne = async (file) => {
    const key = prefix + file.name;
    const bar = h("progress", { max: 100, value: 0, "aria-label": `Uploading ${file.name}` });
    const state = h("span", { class: "state" }, "0%");
    const row = h("div", { class: "progress-row", dataset: { name: file.name } }, h("span", { class: "name mono", title: key }, file.name), bar, state);
    progressList.prepend(row);
    try {
      const signed = await ctx.api.presign(bucket, key, "upload", { content_type: file.type || "application/octet-stream" });
      await sendToPresigned(signed, file, (sent, total) => {
        const percent = total ? Math.min(100, Math.round((sent / total) * 100)) : 0;
        bar.value = percent;
        state.textContent = `${percent}%`;
      });
      bar.value = 100;
      state.textContent = "Uploaded";
      row.classList.add("done");
      return true;
    } catch (error) {
      state.textContent = `Failed: ${messageOf(error)}`;
      row.classList.add("failed");
      notify(`${file.name}: ${messageOf(error)}`, "error");
      return false;
    }
  };
  const upload = async (fileList) => {
    const files = [...fileList];
    if (!files.length) return;
    uploading += files.length;
    let done = 0;
    const queue = files.slice();
    const worker = async () => {
      for (let file = queue.shift(); file; file = queue.shift()) if (await uploadOne(file)) done += 1;
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, worker));
    uploading -= files.length;
    if (done) notify(`Uploaded ${plural(done, "file")} to ${bucket}/${prefix}`, "success");
    if (ctx.isCurrent() && done) await reload();
  };

  const chooser = h("input", { type: "file", multiple: true });
  chooser.addEventListener("change", () => {
    upload(chooser.files);
    chooser.value = "";
  });
  const dropzone = h(
    "div",
    { class: "dropzone" },
    h("p", {}, `Drop files here to upload them to ${prefix || "the top of the bucket"}, or choose them:`),
    field({ label: "Choose files", input: chooser, name: "files" }),
  );
  // The whole panel takes drops; the dropzone shows it ("over") while files are dragged over it.
  const panel = h("section", { class: "panel bucket-browser", "aria-label": `Files of ${bucket}` }, dropzone, progressList, count,
    dataTable({ caption: `Files in ${bucket}/${prefix}`, columns: ["Name", ["Size", "num"], ["Last modified", "hide-narrow"], "Actions"], body }));
  let depth = 0;
  const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  panel.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth += 1;
    dropzone.classList.add("over");
  });
  panel.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  panel.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dropzone.classList.remove("over");
  });
  panel.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    dropzone.classList.remove("over");
    upload(event.dataTransfer?.files || []);
  });
  const leaving = (event) => {
    if (uploading) event.preventDefault();
  };
  window.addEventListener("beforeunload", leaving);
  ctx.onCleanup(() => window.removeEventListener("beforeunload", leaving));

  const refresh = h("button", { type: "button" }, "Refresh");
  refresh.addEventListener("click", () => busy(refresh, reload));

  // Breadcrumbs: Buckets › bucket › in › sub, each a link to that level.
  const segments = prefix.split("/").filter(Boolean);
  const crumbs = [h("a", { href: "#/buckets" }, "Buckets"), h("a", { href: folderHref(bucket, ""), "aria-current": segments.length ? false : "page" }, bucket)];
  segments.forEach((segment, i) => {
    const path = segments.slice(0, i + 1).join("/") + "/";
    crumbs.push(h("a", { href: folderHref(bucket, path), "aria-current": i === segments.length - 1 ? "page" : false }, segment));
  });

  await load();
  if (!ctx.isCurrent()) return;
  replace(
    ctx.root,
    h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumb" },
      crumbs.flatMap((crumb, i) => (i ? [h("span", { "aria-hidden": "true" }, "/"), crumb] : [crumb]))),
    h(
      "div",
      { class: "page-head" },
      h("div", { class: "bucket-title" }, h("h1", { class: "mono" }, prefix ? `${bucket} / ${prefix}` : bucket), visibility),
      h("div", { class: "actions" }, refresh),
    ),
    panel,
  );
}
