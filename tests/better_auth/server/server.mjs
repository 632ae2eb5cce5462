// A real Better Auth server for todo-api's interop tests, as a Next.js app would configure it:
// email and password sign-in, the JWT plugin (GET /api/auth/token, GET /api/auth/jwks), kept in
// memory. Configured by the environment: PORT, BETTER_AUTH_URL, BETTER_AUTH_SECRET, JWT_ALG
// (EdDSA by default), JWT_ROTATION_SECONDS (no rotation by default).
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const db = { user: [], session: [], account: [], verification: [], jwks: [] };
const rotation = Number(process.env.JWT_ROTATION_SECONDS ?? 0);

const auth = betterAuth({
  baseURL: process.env.BETTER_AUTH_URL,
  secret: process.env.BETTER_AUTH_SECRET,
  database: memoryAdapter(db),
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  plugins: [
    jwt({
      jwks: {
        keyPairConfig: { alg: process.env.JWT_ALG ?? "EdDSA" },
        ...(rotation > 0 ? { rotationInterval: rotation, gracePeriod: 3600 } : {}),
      },
    }),
  ],
});

const betterAuthHandler = toNodeHandler(auth);

// Stands in for a verification e-mail the person clicked: marks the address verified.
function verifyEmail(request, response) {
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", () => {
    const { email } = JSON.parse(body);
    const user = db.user.find((candidate) => candidate.email === email);
    if (user) user.emailVerified = true;
    response.writeHead(user ? 204 : 404).end();
  });
}

createServer((request, response) => {
  if (request.method === "POST" && request.url === "/test/verify-email") {
    verifyEmail(request, response);
    return;
  }
  betterAuthHandler(request, response);
}).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`listening on ${process.env.BETTER_AUTH_URL}`);
});
