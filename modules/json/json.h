/* json.h: what the files of the json module share (json.c: the module,
 * encode through jansson, text and arrays; write.c: encode's own writer,
 * compact text without jansson's tree; read.c: decode, the direct reader
 * and jansson's, and the state file's lazy reading). */
#ifndef PROVISION_JSON_H
#define PROVISION_JSON_H

#include <stddef.h>
#include "core.h"

/* the metatable json.array marks a table with, and decode's arrays */
#define ARRAY_MT "provision.json.array"

/* json.c: is the table at idx an array (marked, or keys exactly 1..n)?
 * n: its length */
int json_table_is_array(lua_State *L, int idx, size_t *n);

/* write.c: encode's argument 1 as compact text (pretty: only a value
 * that is not a table): 1 with the text pushed, or 0, the stack as it
 * was, when jansson's path is to take it */
int json_encode_fast(lua_State *L, int pretty);

/* read.c: json.decode, json.decode_lazy, json.decode_at */
int json_decode(lua_State *L);
int json_decode_lazy(lua_State *L);
int json_decode_at(lua_State *L);

#endif
