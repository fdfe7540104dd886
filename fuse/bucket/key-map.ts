/**
 * Maps mount paths to S3 keys under the mount's prefix: `/a/b` is the object `<prefix>a/b`,
 * and the directory `/a` is every key starting with `<prefix>a/`.
 */
export class KeyMap {
  constructor(readonly prefix: string) {}

  fileKey(path: string): string {
    return this.prefix + path.slice(1);
  }

  dirPrefix(path: string): string {
    return path === "/" ? this.prefix : `${this.prefix}${path.slice(1)}/`;
  }
}
