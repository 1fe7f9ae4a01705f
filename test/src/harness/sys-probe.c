/* sys-probe: one raw system call per argument group, "NR:A0:A1:..." (numbers
 * in C notation, 64-bit), printing "ok" or the errno number per call, one
 * line each. Built static by test/src/runtime-oci-seccomp2.test.ts and run
 * in a busybox rootfs under a seccomp profile: getpid ignores its
 * arguments, so whether a rule on them held is what the answer says. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      unsigned long long v[7] = { 0 };
      char *p = argv[i];
      long r;
      for (int k = 0; k < 7 && *p; k++)
        {
          v[k] = strtoull (p, &p, 0);
          if (*p == ':')
            p++;
        }
      errno = 0;
      r = syscall ((long) v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
      if (r < 0)
        printf ("%s=%d\n", argv[i], errno);
      else
        printf ("%s=ok\n", argv[i]);
    }
  return 0;
}
