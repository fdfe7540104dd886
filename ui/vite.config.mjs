import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The dashboard: built into dist/ui, served by `silo serve` at /ui (no CDN, no dev server needed).
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  // Preact's automatic JSX runtime, without a framework plugin.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: fileURLToPath(new URL("../dist/ui", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  logLevel: "warn",
});
