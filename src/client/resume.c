/* client/resume — a watch's resume point. See resume.h. */
#include "client/resume.h"

#include "common/assert.h"

void client_resume_init(struct client_resume *r, uint64_t after)
{
    r->last = after;
    r->at_last = 0;
    r->skip = 0;
}

uint64_t client_resume_from(struct client_resume *r)
{
    if (r->at_last == 0) {
        r->skip = 0;
        return r->last;
    }
    ASSERT(r->last > 0);
    r->skip = r->at_last;
    return r->last - 1;
}

bool client_resume_accept(struct client_resume *r, uint64_t rev)
{
    /* Below the resume point, or at a starting point (events above it). */
    if (rev < r->last || (rev == r->last && r->at_last == 0))
        return false;
    if (rev == r->last) {
        if (r->skip > 0) {
            r->skip--;
            return false;
        }
        r->at_last++;
        return true;
    }
    r->last = rev;
    r->at_last = 1;
    r->skip = 0;
    return true;
}
