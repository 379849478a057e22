/* status_page — the HTML of the status page (see status_page.c). */
#ifndef COHORT_SERVER_STATUS_PAGE_H
#define COHORT_SERVER_STATUS_PAGE_H

#include "common/resp.h"

/* Append the page's HTML to out. */
void status_page_write(struct resp_buf *out);

#endif
