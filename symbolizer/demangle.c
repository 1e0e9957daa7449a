/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Demangling of linkage names, through libiberty's cplus_demangle (the
 * demangler of binutils and GDB): C++ (Itanium ABI) and Rust, both the legacy
 * scheme (_ZN...17h<hash>E, shown without the hash) and v0 (_R...).
 * DMGL_AUTO tries Rust first, then C++; DMGL_PARAMS keeps the parameter
 * types, as perf and c++filt show them.
 *
 * Called on the slow path only (a frame being named), under the lock of the
 * string pool given: the results are interned there (an image's names), so
 * they live as long as the frames that point to them.
 */
#include <errno.h>
#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer_internal.h"

static bool maybe_mangled(const char *name)
{
	return name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

int sym_demangle(struct str_pool *sp, const char *name, const char **function,
		 const char **system_name)
{
	char *dm = NULL;

	*function = NULL;
	*system_name = NULL;
	if (!name || !name[0])
		return 0;
	if (maybe_mangled(name))
		dm = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	if (dm) {
		*function = str_pool__intern(sp, dm, strlen(dm));
		*system_name = str_pool__intern(sp, name, strlen(name));
		free(dm);
	} else {
		*function = str_pool__intern(sp, name, strlen(name));
	}
	if (!*function || (dm && !*system_name))
		return -ENOMEM;
	return 0;
}
