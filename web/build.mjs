// Builds the dashboard into ../oscar/ui/static (committed, so `pip install` needs no Node).
//   node build.mjs           write the build
//   node build.mjs --check   build into a temporary folder and fail if it differs from the commit
import { build } from "esbuild";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const committed = join(here, "..", "oscar", "ui", "static");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "oscar-ui-")) : committed;

if (!check) rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { main: join(here, "src", "main.js"), styles: join(here, "src", "styles.css") },
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  target: ["chrome110", "firefox115", "safari16"],
  outdir: join(out, "assets"),
  entryNames: "[name]",
  chunkNames: "[name]-[hash]",
  legalComments: "linked",
  charset: "utf8",
  logLevel: "warning",
});
cpSync(join(here, "src", "index.html"), join(out, "index.html"));
cpSync(join(here, "src", "favicon.svg"), join(out, "favicon.svg"));

function files(root) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(root, path));
    }
  };
  walk(root);
  return found.sort();
}

if (check) {
  const built = files(out);
  const kept = files(committed);
  const problems = [];
  for (const name of new Set([...built, ...kept])) {
    if (!kept.includes(name)) problems.push(`missing from the commit: ${name}`);
    else if (!built.includes(name)) problems.push(`not built from the source: ${name}`);
    else if (!readFileSync(join(out, name)).equals(readFileSync(join(committed, name))))
      problems.push(`differs from the source's build: ${name}`);
  }
  rmSync(out, { recursive: true, force: true });
  if (problems.length) {
    console.error(problems.join("\n") + "\nrun `npm run build` in web/ and commit oscar/ui/static");
    process.exit(1);
  }
  console.log(`oscar/ui/static matches the build of web/src (${built.length} files)`);
} else {
  const total = files(out).reduce((sum, name) => sum + statSync(join(out, name)).size, 0);
  console.log(`built ${files(out).length} files, ${(total / 1024).toFixed(0)} KiB, into ${relative(process.cwd(), out) || "."}`);
}
