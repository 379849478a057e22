/* tmpdir — scratch directories for the unit tests that use the real file
 * system (storage, persister, snapshot files): made fresh under /tmp and
 * removed, whole, by the test's teardown. */
#ifndef COHORT_TESTS_UNIT_TMPDIR_H
#define COHORT_TESTS_UNIT_TMPDIR_H

#include <stdbool.h>
#include <stddef.h>

/* Make /tmp/cohort-<name>-XXXXXX (a fresh, unique directory) and put its
 * path in out; false if it does not fit in size or mkdtemp failed. */
bool tmpdir_make(char *out, size_t size, const char *name);

/* Remove the tree at path, depth first, without following links. */
void tmpdir_remove(const char *path);

#endif
