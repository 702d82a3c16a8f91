/*
 * extlabels.h - external labels (--external-label NAME=VALUE): the labels that tell one
 * tsdbd from another behind Thanos Query or a fan-out Prometheus. Every series the
 * StoreAPI and remote read return carries them; an external label replaces a stored
 * label of the same name (as a Thanos sidecar does), and a matcher on an external
 * label is decided against its value instead of the stored series: a match drops the
 * matcher, a mismatch selects nothing.
 *
 * Threading: no shared state; the app's external labels are read-only after start-up.
 */
#ifndef TS_SERVER_EXTLABELS_H
#define TS_SERVER_EXTLABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/app.h"

/* Whether s (NUL-terminated) is a Prometheus label name. */
bool ts_ext_valid_name(const char *s);

/*
 * Parses "NAME=VALUE" (borrowed) and adds it to *l / *n (an array the caller frees
 * with ts_free, its strings pointing into `arg`), keeping it sorted by name. Returns 0,
 * TS_EINVALID (no '=', a name that is not a Prometheus label name or starts with "__",
 * a repeated name: msg says which) or -ENOMEM.
 */
int ts_ext_parse(const char *arg, struct ts_label **l, size_t *n, char *msg, size_t msg_len);

/*
 * The matchers m[0..n) (borrowed) with those on external labels decided: the rest in
 * *out (a new array of *n_out, ts_free it; strings borrowed). *none is set when an
 * external label fails its matcher (select nothing). Returns 0, TS_EINVALID (a bad
 * regex; msg says why) or -ENOMEM.
 */
int ts_ext_matchers(const struct ts_app *app, const struct ts_matcher *m, size_t n,
		    struct ts_matcher **out, size_t *n_out, bool *none, char *msg, size_t msg_len);

/* Series labels l[0..n) with the external labels merged in, sorted by name, into
 * *out (grown with ts_grow; *cap its capacity); *n_out the count. 0 or -ENOMEM. */
int ts_ext_merge(const struct ts_app *app, const struct ts_label *l, size_t n,
		 struct ts_label **out, size_t *cap, size_t *n_out);

/*
 * The order in which to return the series of set: *perm (ts_free it) lists the set's
 * indices sorted by their labels with the external labels merged in; identity when
 * there are none. 0 or -ENOMEM.
 */
int ts_ext_order(const struct ts_app *app, const struct ts_series_set *set, size_t **perm);

#endif
