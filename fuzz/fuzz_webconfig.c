/*
 * Fuzz target: the --web.config.file parser (server/webconfig.c: libyaml's document
 * loader, then the web.yml keys of Prometheus' exporter-toolkit).
 * Properties: nothing crashes or leaks; a parsed config's users all have valid bcrypt
 * hashes, TLS on means both file names are set, and header values hold no line break;
 * on failure the message is NUL-terminated and non-empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/webconfig.h"
#include "storage/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts_web_config c;
	char msg[300];
	memset(msg, 'x', sizeof msg);
	char *buf = (char *)fz_memdup(data, size);
	if (!buf)
		return 0;
	int rc = ts_web_config_parse(buf, size, "/etc/tsdbd", &c, msg, sizeof msg);
	if (rc == 0) {
		for (size_t i = 0; i < c.n_users; i++)
			fz_check(ts_web_bcrypt_valid(c.users[i].value) &&
				 !strchr(c.users[i].name, ':'));
		fz_check(!c.tls || (c.cert_file && *c.cert_file && c.key_file && *c.key_file));
		for (size_t i = 0; i < c.n_headers; i++)
			fz_check(!strpbrk(c.headers[i].value, "\r\n"));
		ts_web_config_fini(&c);
	} else if (rc == TS_EINVALID) {
		fz_check(memchr(msg, 0, sizeof msg) && msg[0]);
	}
	free(buf);
	return 0;
}
