/* grove-runtime: an OCI bundle's linux.seccomp compiled into the container's
 * filter when the container is created. The same compiler as Grove's default
 * profile (seccomp/profile.c, which the build runs on default.json), so the
 * program has the same shape and edges: only the native architecture (and
 * the ABIs the profile lists) gets through, arguments are compared on all
 * 64 bits as libseccomp compares them, and a syscall past every one the
 * profile names gets ENOSYS when the default action refuses. The OCI reader
 * (oci_config.c) only finds the object: it is shared with the addon, which
 * runs no profile (the TypeScript command line refuses linux.seccomp as
 * static-only). */
#include "oci_seccomp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../seccomp/profile.h"
#include "hooks.h"
#include "seccomp.h"

static void
blob_put (FILE *f, const char *key, const char *val)
{
  fputs (key, f);
  fputc (0, f);
  fputs (val, f);
  fputc (0, f);
}

/* listenerPath and listenerMetadata into the hooks blob (hooks.h), which
 * reaches every place the init is started from (shim, run, a reaping
 * caller) with what the state needs. */
static int
add_listener (grove_oci_bundle_t *b, const grove_profile_program_t *prog, const char *bundle, const char *id,
              grove_error_t *err)
{
  char *path = grove_json_str (b->text, b->toks, prog->listener_tok);
  char *meta = prog->listener_metadata_tok >= 0 ? grove_json_str (b->text, b->toks, prog->listener_metadata_tok) : NULL;
  char *blob = NULL;
  size_t len = 0;
  FILE *f = open_memstream (&blob, &len);
  if (f == NULL || path == NULL)
    {
      if (f != NULL)
        fclose (f);
      free (blob);
      free (path);
      free (meta);
      return grove_error_set (err, ENOMEM, "config.json linux.seccomp.listenerPath");
    }
  if (b->hooks_blob != NULL)
    fwrite (b->hooks_blob, 1, b->hooks_len, f);
  else
    {
      blob_put (f, GROVE_HOOKS_KEY_ID, id);
      blob_put (f, GROVE_HOOKS_KEY_BUNDLE, bundle);
      blob_put (f, GROVE_HOOKS_KEY_ANNOTATIONS, b->annotations);
    }
  blob_put (f, GROVE_HOOKS_KEY_LISTENER, path);
  if (meta != NULL)
    blob_put (f, GROVE_HOOKS_KEY_LISTENER_METADATA, meta);
  fclose (f);
  free (path);
  free (meta);
  free (b->hooks_blob);
  b->hooks_blob = blob;
  b->hooks_len = len;
  return 0;
}

int
grove_oci_seccomp (grove_oci_bundle_t *b, const char *bundle, const char *id, grove_error_t *err)
{
  static grove_profile_program_t prog;
  char msg[1024];
  char *hex;
  if (b->seccomp_tok <= 0)
    return 0;
  if (grove_profile_compile (b->text, b->toks, b->seccomp_tok, GROVE_PROFILE_OCI, "config.json linux.seccomp.", NULL,
                             &prog, msg, sizeof (msg))
      < 0)
    return grove_error_set (err, 0, "%s", msg);
  if (prog.notify && add_listener (b, &prog, bundle, id, err) < 0)
    return -1;
  hex = grove_seccomp_to_hex (prog.insns, (unsigned) prog.ninsns);
  if (hex == NULL)
    return grove_error_set (err, ENOMEM, "config.json linux.seccomp");
  /* The bundle's: grove_oci_bundle_free frees it. */
  b->cc.seccomp_bpf = hex;
  b->cc.seccomp_flags = prog.flags;
  return 0;
}
