{
  "targets": [
    {
      "target_name": "fuse_fd",
      "sources": ["fuse_fd.c", "fuse_ring.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
