/* auth.c: HTTP Basic credentials, compared in constant time. The *arr apps encode the password
 * as ISO-8859-1, browsers as UTF-8: both encodings of the configured password are accepted. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "util.h"

/* UTF-8 -> ISO-8859-1 when every code point fits; NULL otherwise (then only UTF-8 can match). */
static char *latin1_of(const char *s, size_t *outlen)
{
    size_t n = strlen(s);
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
            out[o++] = (char)(((c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3F));
            i += 2;
        } else {
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

bool auth_basic_ok(const http_request *r, const char *user, const char *pass)
{
    if (!user || !pass)
        return false;
    const char *h = http_header_get(r, "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    const char *b64 = h + 6;
    while (*b64 == ' ')
        b64++;
    size_t blen = strlen(b64);
    while (blen && b64[blen - 1] == ' ')
        blen--;
    if (blen > 4096)
        return false;
    unsigned char *dec = NULL;
    size_t dlen = 0;
    if (base64_decode(b64, blen, &dec, &dlen) < 0)
        return false;
    unsigned char *colon = memchr(dec, ':', dlen);
    bool ok = false;
    if (colon) {
        size_t ulen = (size_t)(colon - dec);
        const unsigned char *p = colon + 1;
        size_t plen = dlen - ulen - 1;
        /* Evaluate every comparison so the time does not tell which part was wrong. */
        bool user_ok = ct_equal(dec, ulen, user, strlen(user));
        bool pass_utf8 = ct_equal(p, plen, pass, strlen(pass));
        size_t l1len = 0;
        char *l1 = latin1_of(pass, &l1len);
        bool pass_l1 = l1 ? ct_equal(p, plen, l1, l1len) : false;
        free(l1);
        ok = user_ok & (pass_utf8 | pass_l1);
    }
    free(dec);
    return ok;
}
