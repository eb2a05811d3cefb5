import { defineConfig } from "vite";

// The build goes into the Python package (server/static/), which `trackd server` serves at /.
export default defineConfig({
  base: "/",
  build: {
    outDir: "../server/static",
    emptyOutDir: true,
    target: "es2022",
  },
  server: {
    // `npm run dev`: the API of a trackd server on :8080
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
