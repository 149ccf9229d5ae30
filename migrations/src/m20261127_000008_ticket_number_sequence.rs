//! Ticket numbers that always increase: one row of `ticket_counters` (day 0) holds the last
//! number handed out, so a day with more than 99,999 tickets runs on into the next day's
//! numbers instead of growing a digit (which made later days' numbers smaller).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Numbers of 15 digits and more are the benchmark tool's seeded tickets, kept apart.
        db.execute_unprepared(
            "INSERT INTO ticket_counters (day, last) \
             SELECT 0, COALESCE(MAX(number), 0) FROM tickets \
             WHERE number < 100000000000000",
        )
        .await?;
        db.execute_unprepared("DELETE FROM ticket_counters WHERE day <> 0")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM ticket_counters WHERE day = 0")
            .await?;
        Ok(())
    }
}
