/* grove-runtime's config.json reader (oci.c's load_bundle), callable in a
 * loop: oci.c is a command line whose errors end in die() -> exit(), so exit
 * is turned into a longjmp back here and die's stderr into a buffer. Nothing
 * else of oci.c runs (no cgroup, no container, no shim). */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

static jmp_buf grove_fuzz_oci_env;
static FILE *grove_fuzz_oci_log;

__attribute__ ((noreturn)) static void
grove_fuzz_oci_exit (int code)
{
  longjmp (grove_fuzz_oci_env, code == 0 ? 0x100 : code);
}

#define exit(code) grove_fuzz_oci_exit (code)
#undef stderr
#define stderr grove_fuzz_oci_log
#define main grove_fuzz_oci_main
#include "../src/oci.c"
#undef main
#undef stderr
#undef exit

static struct bundle grove_fuzz_bundle;

/* What load_bundle allocated into the bundle (locals of a path that died leak). */
static void
bundle_free (struct bundle *b)
{
  free (b->text);
  free (b->rootfs);
  free (b->cwd);
  free (b->hostname);
  free (b->netns);
  free (b->annotations);
  for (size_t i = 0; i < N_OF (b->argv); i++)
    free (b->argv[i]);
  for (size_t i = 0; i < N_OF (b->envp); i++)
    free (b->envp[i]);
  for (size_t i = 0; i < b->cc.nmounts; i++)
    {
      free ((char *) b->mounts[i].source);
      free ((char *) b->mounts[i].destination);
    }
}

int
grove_fuzz_oci_config (const char *dir, char *msg, size_t cap)
{
  /* volatile: read after the longjmp. */
  volatile int code;
  struct bundle *b = &grove_fuzz_bundle;
  memset (b, 0, sizeof (*b));
  msg[0] = '\0';
  grove_fuzz_oci_log = fmemopen (msg, cap, "w");
  if (grove_fuzz_oci_log == NULL)
    abort ();
  code = setjmp (grove_fuzz_oci_env);
  if (code == 0)
    load_bundle (b, dir, "fuzz");
  fclose (grove_fuzz_oci_log);
  msg[cap - 1] = '\0';
  bundle_free (b);
  return code & 0xff;
}
