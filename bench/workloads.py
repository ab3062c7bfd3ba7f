"""The benchmark's workloads: the same data asked of Backplane and of PostGraphile.

Each server gets the document written for its own schema: Backplane's
`schema.graphql`, and what PostGraphile's amber preset derives from the tables
(`allOrganizations`, `usersByOrganizationId`, `rowId`, …). `normalise()` turns
both answers into one shape so that the benchmark can check, before measuring,
that both servers return the same rows.
"""

import datetime
import re

# 1. Support lookup: one organization by slug with its users, subscription and
# last invoices.
SUPPORT_BP = """query SupportLookup($slug: String!) {
  organizationBySlug(slug: $slug) {
    id name slug status region createdAt
    plan { code name priceCents }
    subscription { seats status currentPeriodEnd discountPercent }
    users(first: 50) { totalCount nodes { id email name orgRole status lastSeenAt } }
    invoices(first: 5) { nodes { number amountCents currency status issuedAt dueAt } }
  }
}"""

SUPPORT_PGL = """query SupportLookup($slug: String!) {
  organizationBySlug(slug: $slug) {
    rowId name slug status region createdAt
    orgSubscriptionByOrganizationId {
      seats status currentPeriodEnd discountPercent
      planByPlanId { code name priceCents }
    }
    usersByOrganizationId(first: 50, orderBy: [PRIMARY_KEY_ASC]) {
      totalCount nodes { rowId email name orgRole status lastSeenAt }
    }
    invoicesByOrganizationId(first: 5, orderBy: [ISSUED_AT_DESC]) {
      nodes { number amountCents currency status issuedAt dueAt }
    }
  }
}"""

# 2. Admin list page: 50 organizations with plan, subscription, 10 users and 10
# invoices each.
ADMIN_BP = """query AdminList {
  organizations(first: 50, orderBy: NAME_ASC) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id name slug status region createdAt
      plan { code name priceCents }
      subscription { seats status currentPeriodEnd }
      users(first: 10) { totalCount nodes { id email name status } }
      invoices(first: 10) { totalCount nodes { number amountCents currency status issuedAt } }
    }
  }
}"""

ADMIN_PGL = """query AdminList {
  allOrganizations(first: 50, orderBy: [NAME_ASC, PRIMARY_KEY_ASC]) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      rowId name slug status region createdAt
      orgSubscriptionByOrganizationId {
        seats status currentPeriodEnd
        planByPlanId { code name priceCents }
      }
      usersByOrganizationId(first: 10, orderBy: [PRIMARY_KEY_ASC]) {
        totalCount nodes { rowId email name status }
      }
      invoicesByOrganizationId(first: 10, orderBy: [ISSUED_AT_DESC]) {
        totalCount nodes { number amountCents currency status issuedAt }
      }
    }
  }
}"""

# 3. Deep page: the ten-level query of the DataLoader test
# (tests/api/statements.rs) at $n parents.
DEEP_BP = """query Deep($n: Int!) {
  organizations(first: $n, filter: {status: ACTIVE}) { nodes { id
    users(first: 2) { nodes { id
      organization { id
        invoices(first: 1) { nodes { number
          lines(first: 1) { nodes { description
            invoice { id
              organization { slug
                tickets(first: 1) { nodes { subject
                  requester { email
                    tickets(first: 1) { nodes { id
                      assignee { name }
                      messages(first: 1) { nodes { body } }
                    } }
                  }
                } }
              }
            }
          } }
        } }
      }
    } }
  } }
}"""

DEEP_PGL = """query Deep($n: Int!) {
  allOrganizations(first: $n, condition: {status: "ACTIVE"}, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) { nodes { rowId
    usersByOrganizationId(first: 2, orderBy: [PRIMARY_KEY_ASC]) { nodes { rowId
      organizationByOrganizationId { rowId
        invoicesByOrganizationId(first: 1, orderBy: [ISSUED_AT_DESC]) { nodes { number
          invoiceLinesByInvoiceId(first: 1, orderBy: [PRIMARY_KEY_ASC]) { nodes { description
            invoiceByInvoiceId { rowId
              organizationByOrganizationId { slug
                supportTicketsByOrganizationId(first: 1, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC]) { nodes { subject
                  userByRequesterId { email
                    supportTicketsByRequesterId(first: 1, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC]) { nodes { rowId
                      staffMemberByAssigneeId { name }
                      ticketMessagesByTicketId(first: 1, orderBy: [PRIMARY_KEY_ASC]) { nodes { body } }
                    } }
                  }
                } }
              }
            }
          } }
        } }
      }
    } }
  } }
}"""

# 4. A script paging through every organization, $first at a time, oldest first.
PAGING_BP = """query Page($first: Int!, $after: String) {
  organizations(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name slug status region createdAt }
  }
}"""

PAGING_PGL = """query Page($first: Int!, $after: Cursor) {
  allOrganizations(first: $first, after: $after, orderBy: [CREATED_AT_ASC, PRIMARY_KEY_ASC]) {
    pageInfo { hasNextPage endCursor }
    nodes { rowId name slug status region createdAt }
  }
}"""

# 5. The bulk status change (Backplane only; compared with one raw UPDATE).
BULK_BP = """mutation Bulk($input: BulkOrganizationStatusInput!) {
  bulkUpdateOrganizationStatus(input: $input) { requested changed unchanged failed { id reason } }
}"""

# PostGraphile's relation and column names → Backplane's.
RENAMES = {
    "rowId": "id",
    "allOrganizations": "organizations",
    "usersByOrganizationId": "users",
    "invoicesByOrganizationId": "invoices",
    "invoiceLinesByInvoiceId": "lines",
    "invoiceByInvoiceId": "invoice",
    "organizationByOrganizationId": "organization",
    "supportTicketsByOrganizationId": "tickets",
    "supportTicketsByRequesterId": "tickets",
    "userByRequesterId": "requester",
    "staffMemberByAssigneeId": "assignee",
    "ticketMessagesByTicketId": "messages",
    "orgSubscriptionByOrganizationId": "subscription",
    "planByPlanId": "plan",
}
# Opaque per server: compared by the rows they lead to instead.
IGNORED = {"cursor", "endCursor"}
OPAQUE_ID = re.compile(r"^[a-z]{3}_(\d+)$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _scalar(value):
    if isinstance(value, str):
        m = OPAQUE_ID.match(value)
        if m:
            return int(m.group(1))
        if value.lstrip("-").isdigit():  # PostGraphile sends bigint as a string
            return int(value)
        if TIMESTAMP.match(value):
            text = value.replace("Z", "+00:00")
            return datetime.datetime.fromisoformat(text).timestamp()
        return value.lower()  # enum values (ACTIVE) against stored text
    return value


def _walk(value):
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if key in IGNORED:
                continue
            out[RENAMES.get(key, key)] = _walk(inner)
        # PostGraphile reaches the plan through the subscription; Backplane
        # also offers it on the organization.
        sub = out.get("subscription")
        if isinstance(sub, dict) and "plan" in sub and "plan" not in out:
            out["plan"] = sub.pop("plan")
        return out
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return _scalar(value)


def normalise(data):
    """The answer of either server in one comparable shape."""
    return _walk(data)
