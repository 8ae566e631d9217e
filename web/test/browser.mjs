// Starting Debian's Chromium headless for the browser tests (puppeteer-core, the system browser:
// the machine's network is closed, so nothing is downloaded and background connections are off).
import puppeteer from "puppeteer-core";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** A headless Chromium with a fresh profile; close() also removes the profile. */
export async function launch() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "gg-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.GG_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic", `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
