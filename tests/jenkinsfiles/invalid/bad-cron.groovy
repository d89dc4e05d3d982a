// expect: 5:14 cron('H 25 * * *'): hour: `25` is outside 0-23
pipeline {
    agent any
    triggers {
        cron('H 25 * * *')
    }
    stages { stage('A') { steps { echo 'a' } } }
}
