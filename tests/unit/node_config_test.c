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

#include <cmocka.h>

#include "runtime/node.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lower_limits_keep_the_default_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
