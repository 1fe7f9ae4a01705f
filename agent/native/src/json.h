/* A small JSON reader: tokens in document order, each knowing where its
 * subtree ends (next), so objects and arrays can be walked without a tree. */
#ifndef GROVE_JSON_H
#define GROVE_JSON_H

#include <stddef.h>

typedef enum
{
  GROVE_J_NULL,
  GROVE_J_BOOL,
  GROVE_J_NUM,
  GROVE_J_STR,
  GROVE_J_ARR,
  GROVE_J_OBJ,
} grove_jtype_t;

typedef struct
{
  grove_jtype_t type;
  int start, end; /* byte range (a string's without the quotes) */
  int size;       /* members of an object, elements of an array */
  int next;       /* index of the token after this subtree */
} grove_jtok_t;

/* Number of tokens, or -1 for invalid JSON (or more than max tokens). */
int grove_json_parse (const char *s, size_t len, grove_jtok_t *toks, int max);
/* The value of key in object obj, or -1. */
int grove_json_get (const char *s, const grove_jtok_t *t, int obj, const char *key);
/* Element k of array arr, or -1. */
int grove_json_at (const grove_jtok_t *t, int arr, int k);
/* A string token, unescaped, malloc'd; NULL when i is not a string. */
char *grove_json_str (const char *s, const grove_jtok_t *t, int i);
/* An integer number token; -1 when i is not one. */
int grove_json_num (const char *s, const grove_jtok_t *t, int i, long long *out);
int grove_json_true (const char *s, const grove_jtok_t *t, int i);

#endif
