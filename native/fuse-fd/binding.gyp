{
  "targets": [
    {
      "target_name": "fuse_fd",
      "sources": ["fuse_fd.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
