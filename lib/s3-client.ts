import { createHash } from "node:crypto";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { S3Client } from "@aws-sdk/client-s3";

export interface S3ClientSettings {
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxSockets?: number;
}

/**
 * An S3 client with settings that work on AWS, R2, GCS, MinIO and Swift's s3api alike:
 * - checksums only where the API requires them (Swift/GCS reject aws-chunked streamed bodies);
 * - path-style addressing for custom endpoints (no wildcard DNS needed);
 * - Content-MD5 on DeleteObjects (required by Swift and older S3 implementations);
 * - region redirects followed (a bucket in another AWS region still works).
 */
export function makeS3Client(s: S3ClientSettings): S3Client {
  // The SDK warns on every start under Node 20 (still supported by silo): keep daemon logs clean.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const agentOptions = { keepAlive: true, maxSockets: s.maxSockets ?? 64 };
  const client = new S3Client({
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: !!s.endpoint,
    credentials: s.credentials,
    followRegionRedirects: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 4,
    requestHandler: {
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
    },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      if (context.commandName === "DeleteObjectsCommand" && request.headers && (typeof request.body === "string" || request.body instanceof Uint8Array)) {
        request.headers["content-md5"] = createHash("md5").update(request.body).digest("base64");
      }
      return next(args);
    },
    { step: "build", name: "siloContentMd5ForDeleteObjects" },
  );
  return client;
}
