Dashboard.DashboardApp.Create(args).Run();
