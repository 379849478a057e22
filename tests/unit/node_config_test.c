/* node_replica_config: the core's bounds a node derives from its flags.
 * Lowering the value or key limit never lowers the bound on uncommitted
 * bytes (nor so the largest message): a replica restarted with lower
 * limits must still send, in one DO-VIEW-CHANGE, a suffix appended under
 * the default ones, and its commit floor must not rise above what was
 * committed. Raising a limit raises it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/node.h"
#include "runtime/transport.h"
#include "storage/wal.h"

static struct node_config config_with(uint32_t value_max, uint32_t key_max)
{
    struct node_config c = {.replica_count = 3, .self = 0};
    c.kv = kv_config_default();
    c.kv.value_size_max = value_max;
    c.kv.key_size_max = key_max;
    return c;
}

static void lower_limits_keep_the_default_pipeline(void **state)
{
    (void)state;
    struct replica_config def, low, tiny, high;
    struct node_config c =
        config_with(KV_VALUE_SIZE_MAX_DEFAULT, KV_KEY_SIZE_MAX_DEFAULT);
    node_replica_config(&c, 1, &def);
    c = config_with(1000, 100);
    node_replica_config(&c, 1, &low);
    c = config_with(1, 1);
    node_replica_config(&c, 1, &tiny);
    c = config_with(4u << 20, KV_KEY_SIZE_MAX_DEFAULT);
    node_replica_config(&c, 1, &high);

    /* Admission follows the limits... */
    assert_true(low.body_size_max < def.body_size_max);
    assert_true(high.body_size_max > def.body_size_max);
    /* ... the bound on uncommitted bytes only up. */
    assert_true(def.pipeline_bytes_max >= 4u * def.body_size_max);
    assert_int_equal(low.pipeline_bytes_max, def.pipeline_bytes_max);
    assert_int_equal(tiny.pipeline_bytes_max, def.pipeline_bytes_max);
    assert_true(high.pipeline_bytes_max >= 4u * high.body_size_max);
    assert_true(high.pipeline_bytes_max > def.pipeline_bytes_max);
    /* The log holds at least two pipelines' worth. */
    assert_true(low.log_bytes_max >= 2u * low.pipeline_bytes_max);
    assert_true(high.log_bytes_max >= 2u * high.pipeline_bytes_max);
}

/* A message between replicas carries about five bodies and a peer frame
 * is at most TRANSPORT_FRAME_SIZE_LIMIT: the largest value fits it and one
 * byte more is refused by name, before the transport would refuse the
 * frame size without naming a flag. */
static void the_largest_value_fits_a_peer_frame(void **state)
{
    (void)state;
    struct node_config c = config_with(0, KV_KEY_SIZE_MAX_DEFAULT);
    uint32_t max = node_value_size_max(&c);
    assert_true(max > 200u << 20);
    c.kv.value_size_max = max;
    struct cohort_err err;
    assert_true(node_frame_size(&c) <= TRANSPORT_FRAME_SIZE_LIMIT);
    assert_int_equal(node_config_check(&c, &err), 0);
    c.kv.value_size_max = 20u << 20; /* failed at start before */
    assert_int_equal(node_config_check(&c, &err), 0);
    c.kv.value_size_max = max + 1;
    assert_true(node_frame_size(&c) > TRANSPORT_FRAME_SIZE_LIMIT);
    assert_int_equal(node_config_check(&c, &err), -COHORT_EINVAL);
    assert_non_null(strstr(err.message, "--max-value-size"));
    assert_non_null(strstr(err.message, "lower --max-value-size"));
    c.kv.value_size_max = KV_VALUE_SIZE_LIMIT + 1u;
    assert_int_equal(node_config_check(&c, &err), -COHORT_EINVAL);
    /* A larger key leaves less room for the value. */
    c = config_with(0, KV_KEY_SIZE_LIMIT);
    assert_true(node_value_size_max(&c) < max);
}

/* The log's segments hold one entry of the largest value and key: the
 * default 64 MiB up to there, then what one needs; a smaller
 * --wal-segment-size is refused by name instead of stopping the storage
 * at the first large write. */
static void a_wal_segment_holds_the_largest_entry(void **state)
{
    (void)state;
    struct node_config c =
        config_with(KV_VALUE_SIZE_MAX_DEFAULT, KV_KEY_SIZE_MAX_DEFAULT);
    assert_int_equal(node_wal_segment_size(&c), WAL_SEGMENT_SIZE_DEFAULT);
    c.kv.value_size_max = 80u << 20;
    uint64_t size = node_wal_segment_size(&c);
    assert_true(size >= WAL_SEGMENT_HEADER_SIZE +
                            wal_record_size(c.kv.value_size_max +
                                            c.kv.key_size_max + 4096u));
    assert_int_equal(size % (1u << 20), 0);
    struct cohort_err err;
    assert_int_equal(node_config_check(&c, &err), 0);
    c.wal_segment_size = 64u << 20;
    assert_int_equal(node_config_check(&c, &err), -COHORT_EINVAL);
    assert_non_null(strstr(err.message, "--wal-segment-size"));
    c.wal_segment_size = size;
    assert_int_equal(node_config_check(&c, &err), 0);
    assert_int_equal(node_wal_segment_size(&c), size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lower_limits_keep_the_default_pipeline),
        cmocka_unit_test(the_largest_value_fits_a_peer_frame),
        cmocka_unit_test(a_wal_segment_holds_the_largest_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
