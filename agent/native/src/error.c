#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int
grove_error_set (grove_error_t *err, int errnum, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (err == NULL)
    return -1;
  err->errnum = errnum;
  va_start (ap, fmt);
  n = vsnprintf (err->msg, sizeof (err->msg), fmt, ap);
  va_end (ap);
  if (n < 0)
    n = 0;
  if (errnum != 0 && (size_t) n < sizeof (err->msg))
    snprintf (err->msg + n, sizeof (err->msg) - (size_t) n, ": %s", strerror (errnum));
  return -1;
}
