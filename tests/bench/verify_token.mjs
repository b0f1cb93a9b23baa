// The `sub` of a valid HS256 token signed with `secret`, or null: the one
// token check of the Node reference servers (node_ws/, node_llm/).
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifyToken(token, secret) {
  const parts = (token || "").split(".");
  if (parts.length !== 3) return null;
  const mac = createHmac("sha256", secret).update(parts[0] + "." + parts[1]).digest();
  const sig = Buffer.from(parts[2], "base64url");
  if (sig.length !== mac.length || !timingSafeEqual(sig, mac)) return null;
  const claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
  return claims.exp > Date.now() / 1000 ? claims.sub : null;
}
