/*
 * retention_file.c - the --retention.config file (retention_file.h), read with libyaml's
 * event parser: a document holding one block or flow mapping of scalar keys (selectors,
 * parsed by query/selector.h) to scalar values (durations, wire/params.h), in file order.
 * A key written without quotes as `{job="x"}` is, to YAML, a flow mapping: its source
 * text is taken as the selector, so the file reads as the selectors people write.
 * Anything else (sequences, nested mappings, aliases, more than
 * MAX_RULES rules) is refused with the line it is on; a selector given twice is kept
 * twice (the first one wins).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "server/cfgfile.h"
#include "server/retention_file.h"
#include "storage/err.h"
#include "storage/mem.h"
#include "wire/params.h"

#define MAX_RULES 1000

void ts_retention_file_fini(struct ts_retention_file *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		ts_selector_fini(&f->sel[i]);
	ts_free(f->sel);
	ts_free(f->rules);
	memset(f, 0, sizeof *f);
}

static int fail(char *msg, size_t msg_len, const yaml_event_t *ev, const char *why)
{
	if (msg)
		snprintf(msg, msg_len, "line %zu: %s", ev ? (size_t)ev->start_mark.line + 1 : 0,
			 why);
	return TS_EINVALID;
}

/* Adds rule sel[0..sl) -> value (the scalar event v). */
static int add_rule(struct ts_retention_file *f, size_t *cap, const char *ks, size_t kl,
		    const yaml_event_t *v, char *msg, size_t msg_len)
{
	char why[300];
	if (f->n >= MAX_RULES)
		return fail(msg, msg_len, v, "more than 1000 rules");
	const char *vs = (const char *)v->data.scalar.value;
	int64_t ms;
	if (ts_parse_duration_ms(vs, &ms) || ms <= 0) {
		snprintf(why, sizeof why, "retention \"%.64s\" is not a positive duration", vs);
		return fail(msg, msg_len, v, why);
	}
	if (ts_grow((void **)&f->sel, cap, f->n + 1, sizeof *f->sel))
		return -ENOMEM;
	size_t rcap = f->n;
	if (ts_grow((void **)&f->rules, &rcap, f->n + 1, sizeof *f->rules))
		return -ENOMEM;
	char pmsg[200] = "";
	int rc = ts_selector_parse(&f->sel[f->n], ks, kl, pmsg, sizeof pmsg);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		snprintf(why, sizeof why, "selector \"%.*s\": %s", (int)(kl < 64 ? kl : 64), ks,
			 pmsg);
		return fail(msg, msg_len, v, why);
	}
	f->rules[f->n] = (struct ts_retention_rule){ f->sel[f->n].m, f->sel[f->n].n, ms };
	f->n++;
	return 0;
}

int ts_retention_file_parse(const char *buf, size_t len, struct ts_retention_file *out, char *msg,
			    size_t msg_len)
{
	memset(out, 0, sizeof *out);
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	yaml_event_t ev;
	/* The key of the rule being read: a scalar's value, or the source text of a flow
	 * mapping (an unquoted `{job="x"}: 3d` is a YAML flow mapping used as a key). */
	char *key = NULL;
	size_t key_len = 0, flow_start = 0;
	int have_key = 0, depth = 0, docs = 0, rc = 0;
	size_t cap = 0;
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			if (msg)
				snprintf(msg, msg_len, "line %zu: %s",
					 (size_t)p.problem_mark.line + 1,
					 p.problem ? p.problem : "not YAML");
			rc = TS_EINVALID;
			break;
		}
		yaml_event_type_t t = ev.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (depth >= 2) {
			/* Inside a flow-mapping key: its source text is the selector. */
			if (t == YAML_MAPPING_START_EVENT)
				depth++;
			else if (t == YAML_MAPPING_END_EVENT && --depth == 1) {
				size_t e = ev.end_mark.index;
				if (e > len || e < flow_start) {
					rc = fail(msg, msg_len, &ev, "bad selector");
				} else {
					key_len = e - flow_start;
					key = ts_malloc(key_len + 1);
					if (!key)
						rc = -ENOMEM;
					else
						memcpy(key, buf + flow_start, key_len);
					have_key = 1;
				}
			} else if (t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT) {
				rc = fail(msg, msg_len, &ev, "not a series selector");
			}
			yaml_event_delete(&ev);
			if (rc)
				break;
			continue;
		}
		switch (t) {
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = fail(msg, msg_len, &ev, "more than one document");
			break;
		case YAML_MAPPING_START_EVENT:
			if (depth == 1 && !have_key) {
				flow_start = ev.start_mark.index;
				depth = 2;
			} else if (depth++ > 0) {
				rc = fail(msg, msg_len, &ev,
					  "a rule is `selector: duration` (no nested mappings)");
			}
			break;
		case YAML_MAPPING_END_EVENT: depth--; break;
		case YAML_SCALAR_EVENT:
			if (depth == 0) {
				/* A lone scalar: only an empty document ("~" or "") is fine. */
				if (ev.data.scalar.length &&
				    strcmp((const char *)ev.data.scalar.value, "~") != 0)
					rc = fail(msg, msg_len, &ev,
						  "expected a mapping of selectors to durations");
			} else if (!have_key) {
				key_len = ev.data.scalar.length;
				key = ts_malloc(key_len + 1);
				if (!key)
					rc = -ENOMEM;
				else
					memcpy(key, ev.data.scalar.value, key_len);
				have_key = 1;
			} else {
				rc = add_rule(out, &cap, key, key_len, &ev, msg, msg_len);
				ts_free(key);
				key = NULL;
				have_key = 0;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = fail(msg, msg_len, &ev, "a rule is `selector: duration` (no lists)");
			break;
		case YAML_ALIAS_EVENT:
			rc = fail(msg, msg_len, &ev, "aliases are not allowed");
			break;
		default: break;
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	ts_free(key);
	yaml_parser_delete(&p);
	if (rc)
		ts_retention_file_fini(out);
	return rc;
}

int ts_retention_file_load(const char *path, struct ts_retention_file *out, char *msg,
			   size_t msg_len)
{
	memset(out, 0, sizeof *out);
	char *buf;
	size_t n;
	int rc = ts_cfgfile_read(path, &buf, &n, msg, msg_len);
	if (rc)
		return rc;
	char m[400] = "";
	rc = ts_retention_file_parse(buf, n, out, m, sizeof m);
	if (rc)
		snprintf(msg, msg_len, "%s: %s", path, m);
	ts_free(buf);
	return rc;
}
