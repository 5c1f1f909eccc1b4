// Open the fleet page (scripts/fleet.py --html) in Debian's headless chromium, check it, and
// optionally take a screenshot. Prints one JSON object: console errors, requests the page
// tried to make (none may leave file://), every agent node with its state, the edges, and
// the side panel as shown after hovering and clicking the agents named by --inspect.
//
//   node scripts/screenshot_fleet.mjs PAGE.html [--png OUT.png] [--inspect AGENT_ID]...
//
// The browser is playwright-core (package.json) driving /usr/bin/chromium (override with
// CHROMIUM=...), headless, with a fresh profile and no background networking.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--hide-scrollbars",
];

function parseArgs(argv) {
  const out = { page: null, png: null, inspect: [], width: 1480 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--png") out.png = argv[++i];
    else if (arg === "--inspect") out.inspect.push(argv[++i]);
    else if (arg === "--width") out.width = Number(argv[++i]);
    else if (!out.page) out.page = arg;
    else throw new Error(`unexpected argument ${arg}`);
  }
  if (!out.page) throw new Error("usage: screenshot_fleet.mjs PAGE.html [--png OUT.png] [--inspect AGENT]...");
  return out;
}

async function panelState(page) {
  return page.$eval("#panel", (el) => ({
    agent: el.dataset.agentId || null,
    heading: el.querySelector("h2")?.textContent ?? null,
    state: el.querySelector(".state")?.textContent ?? null,
    spec: el.querySelector("pre.spec")?.textContent ?? null,
    text: el.textContent,
  }));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const profile = mkdtempSync(join(tmpdir(), "seedcore-chromium-"));
  const report = { consoleErrors: [], pageErrors: [], requests: [], agents: [], panels: [] };
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: args.width, height: 900 },
    deviceScaleFactor: 1,
    offline: true,
  });
  try {
    // Anything but the page itself is an error: the page must be self-contained.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith("file:")) return route.continue();
      report.requests.push(url);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") {
        report.consoleErrors.push(`${msg.type()}: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => report.pageErrors.push(String(err)));
    await page.goto(pathToFileURL(resolve(args.page)).href, { waitUntil: "load" });
    report.title = await page.title();
    report.agents = await page.$$eval("[data-agent-id].agent", (nodes) =>
      nodes.map((n) => ({
        id: n.dataset.agentId,
        state: n.dataset.state,
        label: n.dataset.stateLabel,
        organ: n.dataset.organ,
      })),
    );
    report.edges = await page.$$eval(".edge", (edges) =>
      edges.map((e) => ({ kind: e.dataset.kind, from: e.dataset.from, to: e.dataset.to })),
    );
    report.policies = await page.$$eval("[data-policy-id]", (ps) => ps.map((p) => p.dataset.policyId));
    report.organs = await page.$$eval("[data-organ-id]", (os) => os.map((o) => o.dataset.organId));
    report.legend = await page.$$eval("[data-count]", (cs) =>
      Object.fromEntries(cs.map((c) => [c.dataset.count, Number(c.textContent)])),
    );
    for (const id of args.inspect) {
      const node = page.locator(`.agent[data-agent-id="${id}"]`);
      await node.hover();
      report.panels.push({ inspected: id, via: "hover", ...(await panelState(page)) });
      await node.click();
      await page.mouse.move(0, 0);
      report.panels.push({ inspected: id, via: "click", ...(await panelState(page)) });
    }
    if (args.png) {
      await page.mouse.move(0, 0);
      await page.screenshot({ path: args.png, fullPage: true });
      report.png = resolve(args.png);
    }
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((err) => {
  process.stderr.write(`screenshot_fleet: ${err.stack || err}\n`);
  process.exit(1);
});
