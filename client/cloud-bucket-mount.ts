import { InvalidError } from "../protocol/errors.js";
import type { Secret } from "./secret.js";

export interface CloudBucketMountParams {
  /** S3-compatible endpoint: R2 (`https://<account>.r2.cloudflarestorage.com`), GCS (`https://storage.googleapis.com`), MinIO, … Absent: AWS S3 (or `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` at mount time). */
  bucketEndpointUrl?: string;
  /** Mount only keys under this prefix; it names a directory, so it must end in `/`. */
  keyPrefix?: string;
  /** Credentials: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN` / `AWS_REGION` (or `GOOGLE_ACCESS_KEY_ID` / `GOOGLE_ACCESS_KEY_SECRET` for GCS HMAC keys). */
  secret?: Secret;
  readOnly?: boolean;
  /** The reader pays for requests and transfer (needs credentials). */
  requesterPays?: boolean;
  /** Bucket region (else the secret's `AWS_REGION`, `AWS_REGION` in the environment, or us-east-1 with redirects followed). */
  region?: string;
}

/** Bucket names: S3's rules loosened to what R2 and GCS also accept. */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{1,221}[A-Za-z0-9]$/;

/** A cloud bucket to mount in a job: a value, checked when made; nothing is contacted until it is mounted. */
export class CloudBucketMount {
  readonly bucketName: string;
  readonly bucketEndpointUrl: string | undefined;
  readonly keyPrefix: string | undefined;
  readonly secret: Secret | undefined;
  readonly readOnly: boolean;
  readonly requesterPays: boolean;
  readonly region: string | undefined;

  constructor(bucketName: string, params: CloudBucketMountParams = {}) {
    if (typeof bucketName !== "string" || !BUCKET_RE.test(bucketName)) {
      throw new InvalidError(`Invalid bucket name ${JSON.stringify(bucketName)}: 3-223 letters, digits, '.', '_' or '-'`, "INVALID");
    }
    if (params.bucketEndpointUrl !== undefined) {
      let url: URL;
      try {
        url = new URL(params.bucketEndpointUrl);
      } catch {
        throw new InvalidError(`Invalid bucketEndpointUrl ${JSON.stringify(params.bucketEndpointUrl)}: not a URL`, "INVALID");
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidError(`bucketEndpointUrl must be http(s), got ${url.protocol}`, "INVALID");
    }
    if (params.keyPrefix !== undefined) {
      if (!params.keyPrefix.endsWith("/")) {
        throw new InvalidError(`keyPrefix ${JSON.stringify(params.keyPrefix)} must end in '/' (it names a directory)`, "INVALID");
      }
      if (params.keyPrefix.startsWith("/") || params.keyPrefix.split("/").slice(0, -1).some((s) => s === "" || s === "." || s === "..")) {
        throw new InvalidError(`keyPrefix ${JSON.stringify(params.keyPrefix)} must be a relative path like 'path/to/dir/'`, "INVALID");
      }
    }
    if (params.requesterPays && !params.secret) {
      throw new InvalidError("Credentials are required in order to use Requester Pays (pass a secret)", "INVALID");
    }
    this.bucketName = bucketName;
    this.bucketEndpointUrl = params.bucketEndpointUrl;
    this.keyPrefix = params.keyPrefix;
    this.secret = params.secret;
    this.readOnly = params.readOnly ?? false;
    this.requesterPays = params.requesterPays ?? false;
    this.region = params.region;
  }
}

/** `silo.cloudBucketMounts` (Modal's `modal.cloudBucketMounts`). */
export class CloudBucketMountService {
  create(bucketName: string, params: CloudBucketMountParams = {}): CloudBucketMount {
    return new CloudBucketMount(bucketName, params);
  }
}
