#include "common/list.h"

#include <criterion/criterion.h>
#include <stddef.h>

/* The link is deliberately not the first member: pskgw_container_of must subtract its offset. */
typedef struct {
    int value;
    pskgw_list_t link;
    int after;
} item_t;

/* The values of the list first to last into out; also checks every back pointer. */
static size_t values(const pskgw_list_t *head, int *out, size_t max)
{
    size_t n = 0;
    const pskgw_list_t *prev = head;
    pskgw_list_t *pos;
    pskgw_list_foreach(pos, head)
    {
        cr_assert_eq(pos->prev, prev, "back pointer of element %zu", n);
        cr_assert_lt(n, max);
        out[n++] = pskgw_container_of(pos, item_t, link)->value;
        prev = pos;
    }
    cr_assert_eq(head->prev, prev, "the head's last pointer");
    return n;
}

static void expect_values(const pskgw_list_t *head, const int *want, size_t n)
{
    int got[16];
    size_t m = values(head, got, 16);
    cr_assert_eq(m, n, "length %zu, want %zu", m, n);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(got[i], want[i], "element %zu is %d, want %d", i, got[i], want[i]);
}

Test(list, an_initialised_head_is_empty)
{
    pskgw_list_t head;
    pskgw_list_init(&head);
    cr_expect(pskgw_list_empty(&head));
    cr_expect_null(pskgw_list_first(&head));
    cr_expect_null(pskgw_list_last(&head));
    pskgw_list_t st = PSKGW_LIST_HEAD_INIT(st);
    cr_expect(pskgw_list_empty(&st));
    expect_values(&head, NULL, 0);
}

Test(list, insert_head_and_tail_keep_order)
{
    pskgw_list_t head;
    item_t it[4] = { { .value = 1 }, { .value = 2 }, { .value = 3 }, { .value = 4 } };
    pskgw_list_init(&head);
    pskgw_list_insert_tail(&head, &it[1].link);
    pskgw_list_insert_tail(&head, &it[2].link);
    pskgw_list_insert_head(&head, &it[0].link);
    pskgw_list_insert_tail(&head, &it[3].link);
    cr_expect_not(pskgw_list_empty(&head));
    expect_values(&head, (int[]){ 1, 2, 3, 4 }, 4);
    cr_expect_eq(pskgw_list_entry(pskgw_list_first(&head), item_t, link), &it[0]);
    cr_expect_eq(pskgw_list_entry(pskgw_list_last(&head), item_t, link), &it[3]);
    pskgw_list_t empty;
    pskgw_list_init(&empty);
    cr_expect_null(pskgw_list_entry(pskgw_list_first(&empty), item_t, link));
}

Test(list, remove_first_middle_last_and_only)
{
    pskgw_list_t head;
    item_t it[3] = { { .value = 1 }, { .value = 2 }, { .value = 3 } };
    pskgw_list_init(&head);
    for (int i = 0; i < 3; i++)
        pskgw_list_insert_tail(&head, &it[i].link);

    pskgw_list_remove(&it[1].link);
    expect_values(&head, (int[]){ 1, 3 }, 2);
    pskgw_list_remove(&it[0].link);
    expect_values(&head, (int[]){ 3 }, 1);
    pskgw_list_remove(&it[2].link);
    expect_values(&head, NULL, 0);
    cr_expect(pskgw_list_empty(&head));
    cr_expect_null(pskgw_list_first(&head));
}

Test(list, linked_tells_zeroed_inserted_and_removed_links_apart)
{
    pskgw_list_t head;
    item_t it = { 0 };
    pskgw_list_init(&head);
    cr_expect_not(pskgw_list_linked(&it.link), "a zeroed link is unlinked");
    pskgw_list_insert_head(&head, &it.link);
    cr_expect(pskgw_list_linked(&it.link));
    pskgw_list_remove(&it.link);
    cr_expect_not(pskgw_list_linked(&it.link), "a removed link is unlinked");
    cr_expect_null(it.link.next);
    cr_expect_null(it.link.prev);
    /* and it can go into a list again (the assertion of a double insert does not fire) */
    pskgw_list_insert_tail(&head, &it.link);
    expect_values(&head, (int[]){ 0 }, 1);
}

Test(list, foreach_safe_may_remove_the_current_element)
{
    pskgw_list_t head;
    item_t it[6];
    pskgw_list_init(&head);
    for (int i = 0; i < 6; i++) {
        it[i] = (item_t){ .value = i };
        pskgw_list_insert_tail(&head, &it[i].link);
    }
    pskgw_list_t *pos, *tmp;
    size_t visited = 0;
    pskgw_list_foreach_safe(pos, tmp, &head)
    {
        visited++;
        if (pskgw_container_of(pos, item_t, link)->value % 2 == 0)
            pskgw_list_remove(pos);
    }
    cr_expect_eq(visited, 6);
    expect_values(&head, (int[]){ 1, 3, 5 }, 3);
    pskgw_list_foreach_safe(pos, tmp, &head)
    {
        pskgw_list_remove(pos);
    }
    cr_expect(pskgw_list_empty(&head));
}

Test(list, container_of_undoes_the_member_offset)
{
    item_t it = { .value = 7, .after = 9 };
    pskgw_list_t *l = &it.link;
    item_t *back = pskgw_container_of(l, item_t, link);
    cr_expect_eq(back, &it);
    cr_expect_eq(back->value, 7);
    cr_expect_eq(back->after, 9);
    cr_expect_neq(offsetof(item_t, link), 0);
}

Test(list, moving_elements_between_lists)
{
    pskgw_list_t a, b;
    item_t it[3] = { { .value = 1 }, { .value = 2 }, { .value = 3 } };
    pskgw_list_init(&a);
    pskgw_list_init(&b);
    for (int i = 0; i < 3; i++)
        pskgw_list_insert_tail(&a, &it[i].link);
    /* an LRU's "touch": take the element out, put it first (here into another list) */
    pskgw_list_remove(&it[2].link);
    pskgw_list_insert_head(&b, &it[2].link);
    pskgw_list_remove(&it[0].link);
    pskgw_list_insert_head(&a, &it[0].link);
    pskgw_list_remove(&it[1].link);
    pskgw_list_insert_head(&a, &it[1].link);
    expect_values(&a, (int[]){ 2, 1 }, 2);
    expect_values(&b, (int[]){ 3 }, 1);
}
